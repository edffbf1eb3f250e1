//! Duet's integration tests, in one binary so the whole dependency set links once.

mod lifecycle;
mod protocol;
mod raw;
