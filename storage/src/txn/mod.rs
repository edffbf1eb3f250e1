//! Transactions: the replicated command set ([`commands`]), the store that
//! executes commands in one order ([`TxnStore`]), and the client that runs
//! two-phase commit with a primary key and resolves the locks it meets.

mod client;
pub mod commands;
mod store;

pub use client::{CommitFault, Savepoint, Transaction, TxnClient, TxnOptions};
pub use store::{LocalStore, TxnStore};

#[cfg(test)]
mod tests;
