//! Transactions: the replicated command set ([`commands`]), reads as data
//! ([`read`]), the store that executes commands in one order and answers
//! reads wherever the keys live ([`TxnStore`]), and the client that runs
//! two-phase commit with a primary key and resolves the locks it meets,
//! and the detector of deadlocks among its lock waits ([`deadlock`]).

mod client;
pub mod commands;
pub mod deadlock;
pub mod read;
mod store;

pub use client::{CommitFault, Savepoint, Transaction, TxnClient, TxnOptions};
pub use store::{LocalStore, TxnStore};

#[cfg(test)]
mod tests;
