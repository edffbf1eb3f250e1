//! The placement crate's one error type: what a join, a store heartbeat or an
//! administrative call can be refused for.

/// Result alias for the placement crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No store with this id was ever admitted.
    #[error("unknown store {0}")]
    UnknownStore(u64),
    /// A join names an id that another store (with other addresses) holds.
    #[error("store id {0} is already taken by a member with other addresses")]
    StoreIdTaken(u64),
    /// A join names an address another store already uses.
    #[error("address {addr} is already used by store {store}")]
    AddressTaken { addr: String, store: u64 },
    /// A store that was removed may not come back under the same id.
    #[error("store {0} was removed from the cluster")]
    StoreRemoved(u64),
    /// Store ids are positive and below the columnar learners' id bit.
    #[error("invalid store id {0}")]
    InvalidStoreId(u64),
    /// Removing this store would leave no row store to hold the data.
    #[error("store {0} is the last row store and cannot be removed")]
    LastRowStore(u64),
}
