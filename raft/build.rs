//! Generates the node-to-node gRPC service (`duet.node.Node`) from the
//! method list below. The messages are hand-written prost structs in
//! `src/rpc/messages.rs`, so no `.proto` file and no `protoc` are needed.

use tonic_build::manual::{Builder, Method, Service};

/// (snake name, route name, input, output, client streams, server streams)
const METHODS: &[(&str, &str, &str, &str, bool, bool)] = &[
    ("raft", "Raft", "RaftBatch", "RaftDone", true, false),
    ("forward", "Forward", "Request", "Reply", false, false),
    (
        "locate_region",
        "LocateRegion",
        "LocateRequest",
        "LocateResponse",
        false,
        false,
    ),
    (
        "kv_get",
        "KvGet",
        "GetRequest",
        "ReadResponse",
        false,
        false,
    ),
    (
        "kv_batch_get",
        "KvBatchGet",
        "BatchGetRequest",
        "ReadResponse",
        false,
        false,
    ),
    (
        "kv_scan",
        "KvScan",
        "ScanRequest",
        "ReadResponse",
        false,
        true,
    ),
    (
        "kv_read",
        "KvRead",
        "ReadRequest",
        "ReadResponse",
        false,
        false,
    ),
    (
        "kv_prewrite",
        "KvPrewrite",
        "PrewriteRequest",
        "CommandResponse",
        false,
        false,
    ),
    (
        "kv_commit",
        "KvCommit",
        "CommitRequest",
        "CommandResponse",
        false,
        false,
    ),
    (
        "kv_check_txn_status",
        "KvCheckTxnStatus",
        "CheckTxnStatusRequest",
        "CommandResponse",
        false,
        false,
    ),
    (
        "kv_resolve_lock",
        "KvResolveLock",
        "ResolveLockRequest",
        "CommandResponse",
        false,
        false,
    ),
    (
        "kv_pessimistic_lock",
        "KvPessimisticLock",
        "PessimisticLockRequest",
        "CommandResponse",
        false,
        false,
    ),
    (
        "kv_pessimistic_rollback",
        "KvPessimisticRollback",
        "PessimisticRollbackRequest",
        "CommandResponse",
        false,
        false,
    ),
    (
        "kv_execute",
        "KvExecute",
        "CommandRequest",
        "CommandResponse",
        false,
        false,
    ),
];

fn main() {
    let mut service = Service::builder()
        .name("Node")
        .package("duet.node")
        .comment("What one Duet node asks of another: Raft messages, forwarded proposals, and the KV calls of transactions.");
    for &(name, route, input, output, client_streams, server_streams) in METHODS {
        let mut method = Method::builder()
            .name(name)
            .route_name(route)
            .input_type(format!("crate::rpc::messages::{input}"))
            .output_type(format!("crate::rpc::messages::{output}"))
            .codec_path("tonic_prost::ProstCodec");
        if client_streams {
            method = method.client_streaming();
        }
        if server_streams {
            method = method.server_streaming();
        }
        service = service.method(method.build());
    }
    Builder::new().compile(&[service.build()]);
    println!("cargo:rerun-if-changed=build.rs");
}
