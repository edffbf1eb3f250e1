//! Duet's benchmark harness (CH-benCHmark, sysbench-style OLTP) and the home
//! of the `duet` binary, which sits at the top of the crate stack.
