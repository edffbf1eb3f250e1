//! The fault suite's parts (see `docs/architecture/chaos.md`): hosts of
//! their own for the nodes ([`net`]), the cluster of `duet` processes on
//! them ([`cluster`]), the seeded faults ([`nemesis`]), the clients and
//! what they record ([`workload`], [`append`]), and the list-append
//! checker ([`elle`]).

pub mod append;
pub mod cluster;
pub mod elle;
pub mod nemesis;
pub mod net;
pub mod workload;
