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
        "split_region",
        "SplitRegion",
        "SplitRegionRequest",
        "CommandResponse",
        false,
        false,
    ),
    (
        "merge_region",
        "MergeRegion",
        "MergeRegionRequest",
        "CommandResponse",
        false,
        false,
    ),
    (
        "columnar_scan",
        "ColumnarScan",
        "ColumnarScanRequest",
        "ColumnarScanResponse",
        false,
        true,
    ),
    (
        "kv_execute",
        "KvExecute",
        "CommandRequest",
        "CommandResponse",
        false,
        false,
    ),
    (
        "join",
        "Join",
        "pd::JoinRequest",
        "pd::JoinResponse",
        false,
        false,
    ),
    (
        "store_heartbeat",
        "StoreHeartbeat",
        "pd::StoreHeartbeatRequest",
        "pd::StoreHeartbeatResponse",
        false,
        false,
    ),
    (
        "region_heartbeat",
        "RegionHeartbeat",
        "pd::RegionHeartbeatRequest",
        "pd::RegionHeartbeatResponse",
        false,
        false,
    ),
    (
        "get_cluster",
        "GetCluster",
        "pd::GetClusterRequest",
        "pd::GetClusterResponse",
        false,
        false,
    ),
    (
        "remove_store",
        "RemoveStore",
        "pd::RemoveStoreRequest",
        "pd::RemoveStoreResponse",
        false,
        false,
    ),
];

/// Where a message type lives: `pd::X` in `rpc::pd`, the rest in
/// `rpc::messages`.
fn rust_path(name: &str) -> String {
    match name.strip_prefix("pd::") {
        Some(pd) => format!("crate::rpc::pd::{pd}"),
        None => format!("crate::rpc::messages::{name}"),
    }
}

fn main() {
    let mut service = Service::builder()
        .name("Node")
        .package("duet.node")
        .comment("What one Duet node asks of another: Raft messages, forwarded proposals, the KV calls of transactions, and the placement driver's messages.");
    for &(name, route, input, output, client_streams, server_streams) in METHODS {
        let mut method = Method::builder()
            .name(name)
            .route_name(route)
            .input_type(rust_path(input))
            .output_type(rust_path(output))
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
