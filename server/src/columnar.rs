//! Columnar reads across nodes (the protocol: `docs/architecture/placement.md`,
//! "Remote columnar reads"). [`ColumnarService`] serves `ColumnarScan` from
//! this node's replica: the rows of one table in a key range its learner
//! store holds, at the caller's timestamp, as Arrow IPC. [`RemoteReads`] is
//! the SQL layer's `RemoteColumnar`: it cuts a table's rows by region,
//! marks the parts this node's learners hold, and streams each other part
//! from a node whose learner store holds its region.

use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use duet_columnar::{Replica, ScanRequest};
use duet_raft::cluster::ClusterStore;
use duet_raft::rpc::ColumnarHandler;
use duet_raft::rpc::messages::{ColumnarScanRequest, ColumnarScanResponse};
use duet_raft::store::{LEARNER_STORE_BIT, RaftStore, node_of};
use duet_raft::transport::grpc::GrpcTransport;
use duet_sql::{RemoteBatches, RemoteColumnar, RemoteError, RemoteScan, Span};
use duet_storage::engine::rocks::RocksEngine;
use duet_storage::txn::commands::effects::Failure;
use tonic::Streaming;

/// Rows per streamed batch.
const BATCH_ROWS: usize = 8192;
/// How long the first answer may take (the serving replica catches up
/// first, within its read wait), and each later one.
const FIRST_ANSWER: Duration = Duration::from_secs(60);
const NEXT_ANSWER: Duration = Duration::from_secs(30);

/// Serves `ColumnarScan` from this node's columnar replica.
pub struct ColumnarService {
    pub replica: Arc<Replica>,
}

impl ColumnarHandler for ColumnarService {
    fn scan(
        &self,
        request: ColumnarScanRequest,
        send: &mut dyn FnMut(ColumnarScanResponse) -> bool,
    ) {
        let refuse = |why: String| ColumnarScanResponse {
            unavailable: why,
            ..ColumnarScanResponse::default()
        };
        let schema = match decode_schema(&request.schema) {
            Ok(s) => s,
            Err(e) => {
                send(refuse(format!("a table schema that does not decode: {e}")));
                return;
            }
        };
        let fields: Vec<_> = (schema.fields().iter())
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        let keys = (request.start_key.clone(), request.end_key.clone());
        let replica = &self.replica;
        if !replica.available_in(request.table_id, &fields, true, Some(&keys)) {
            send(refuse(format!(
                "node's columnar replica cannot serve table {} over this range now",
                request.table_id
            )));
            return;
        }
        let scan = ScanRequest {
            projection: (!request.all_columns)
                .then(|| request.projection.iter().map(|c| *c as usize).collect()),
            read_ts: request.read_ts,
            partitions: 1,
            keys: Some(keys),
            ..ScanRequest::default()
        };
        let out = match replica.scan(request.table_id, &scan) {
            Ok(out) => out,
            Err(duet_columnar::Error::Locked(info)) => {
                let locked = duet_storage::Error::KeyIsLocked(info);
                send(ColumnarScanResponse {
                    failure: Failure::from_error(&locked),
                    ..ColumnarScanResponse::default()
                });
                return;
            }
            Err(e) => {
                send(refuse(e.to_string()));
                return;
            }
        };
        for part in out.partitions {
            for batch in part.batches(BATCH_ROWS) {
                let message = match batch
                    .map_err(|e| e.to_string())
                    .and_then(|b| encode_batch(&b).map_err(|e| e.to_string()))
                {
                    Ok(ipc) => ColumnarScanResponse {
                        ipc,
                        ..ColumnarScanResponse::default()
                    },
                    Err(e) => refuse(e),
                };
                let failed = !message.unavailable.is_empty();
                if !send(message) || failed {
                    return;
                }
            }
        }
    }
}

/// A batch as one Arrow IPC stream (its schema, the batch, the end).
fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    writer.into_inner()
}

/// A schema as an Arrow IPC stream with no batches.
fn encode_schema(schema: &Schema) -> Result<Vec<u8>, ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    writer.finish()?;
    writer.into_inner()
}

fn decode_schema(bytes: &[u8]) -> Result<SchemaRef, ArrowError> {
    Ok(StreamReader::try_new(Cursor::new(bytes), None)?.schema())
}

fn decode_batches(bytes: &[u8]) -> Result<Vec<RecordBatch>, ArrowError> {
    StreamReader::try_new(Cursor::new(bytes), None)?.collect()
}

/// Serves this node's `replica` to the others over `transport`, and
/// returns how this node reaches theirs.
pub fn link(
    transport: &Arc<GrpcTransport>,
    replica: &Arc<Replica>,
    node_id: u64,
    (learner_store, txn_store): (
        &Arc<RaftStore<RocksEngine>>,
        &Arc<ClusterStore<RocksEngine>>,
    ),
) -> Arc<dyn RemoteColumnar> {
    transport.set_columnar_handler(Arc::new(ColumnarService {
        replica: Arc::clone(replica),
    }));
    Arc::new(RemoteReads {
        node_id,
        learner_store: Arc::clone(learner_store),
        txn_store: Arc::clone(txn_store),
        transport: Arc::clone(transport),
    })
}

/// Other nodes' columnar replicas, as this node reaches them.
pub struct RemoteReads {
    pub node_id: u64,
    pub learner_store: Arc<RaftStore<RocksEngine>>,
    pub txn_store: Arc<ClusterStore<RocksEngine>>,
    pub transport: Arc<GrpcTransport>,
}

impl RemoteReads {
    /// The nodes whose learner stores hold a replica of the region over
    /// `[start, end)`, other than this one, starting at one picked by the
    /// region's id (so reads of many regions spread over the holders).
    fn holders(&self, start: &[u8], end: &[u8]) -> Result<Vec<u64>, String> {
        let regions = (self.txn_store.regions_over(start, end)).map_err(|e| e.to_string())?;
        let [region] = regions.as_slice() else {
            return Err("the range now spans several regions".into());
        };
        let mut nodes: Vec<u64> = (region.peers.iter())
            .filter(|p| p.store_id & LEARNER_STORE_BIT != 0)
            .map(|p| node_of(p.store_id))
            .filter(|n| *n != self.node_id)
            .collect();
        if !nodes.is_empty() {
            let at = (region.id % nodes.len() as u64) as usize;
            nodes.rotate_left(at);
        }
        Ok(nodes)
    }
}

impl RemoteColumnar for RemoteReads {
    fn plan(&self, start: &[u8], end: &[u8]) -> Option<Vec<Span>> {
        let regions = self.txn_store.regions_over(start, end).ok()?;
        let view = self.learner_store.view();
        let mut spans: Vec<Span> = Vec::new();
        for r in regions {
            let here = view.covers(&r.start_key, &r.end_key);
            let elsewhere = (r.peers.iter()).any(|p| {
                p.store_id & LEARNER_STORE_BIT != 0 && node_of(p.store_id) != self.node_id
            });
            if !here && !elsewhere {
                return None;
            }
            // Neighbouring parts held here are read as one.
            match spans.last_mut() {
                Some(last) if here && last.here && last.end == r.start_key => {
                    last.end = r.end_key;
                }
                _ => spans.push(Span {
                    start: r.start_key,
                    end: r.end_key,
                    here,
                }),
            }
        }
        Some(spans)
    }

    fn scan(&self, scan: &RemoteScan<'_>) -> Result<RemoteBatches, RemoteError> {
        let unavailable = |e: String| RemoteError::Unavailable(e);
        let schema = encode_schema(scan.schema).map_err(|e| unavailable(e.to_string()))?;
        let mut last = "no other node holds a columnar learner of the range".to_string();
        for node in self.holders(scan.start, scan.end).map_err(unavailable)? {
            let Some(mut client) = self.transport.client(node) else {
                continue;
            };
            let request = ColumnarScanRequest {
                cluster_id: self.transport.cluster_id(),
                table_id: scan.table_id,
                start_key: scan.start.to_vec(),
                end_key: scan.end.to_vec(),
                read_ts: scan.read_ts,
                projection: (scan.projection.unwrap_or_default().iter())
                    .map(|c| *c as u32)
                    .collect(),
                all_columns: scan.projection.is_none(),
                schema: schema.clone(),
            };
            let opened = self.transport.wait(
                async move {
                    let mut stream = client.columnar_scan(request).await?.into_inner();
                    let first = stream.message().await?;
                    Ok::<_, tonic::Status>((stream, first))
                },
                FIRST_ANSWER,
            );
            let (stream, first) = match opened {
                Ok(Ok(answer)) => answer,
                Ok(Err(status)) => {
                    last = format!("node {node}: {}", status.message());
                    continue;
                }
                Err(e) => {
                    last = format!("node {node}: {e}");
                    continue;
                }
            };
            if let Some(failure) = first.as_ref().and_then(|m| m.failure.clone()) {
                return match failure.into_error() {
                    Ok(duet_storage::Error::KeyIsLocked(info)) => Err(RemoteError::Locked(info)),
                    Ok(e) => Err(unavailable(e.to_string())),
                    Err(e) => Err(unavailable(e.to_string())),
                };
            }
            if let Some(why) = first
                .as_ref()
                .map(|m| &m.unavailable)
                .filter(|w| !w.is_empty())
            {
                last = format!("node {node}: {why}");
                continue;
            }
            let mut batches = RemoteStream {
                transport: Arc::clone(&self.transport),
                stream: Some(stream),
                ready: VecDeque::new(),
                done: first.is_none(),
            };
            if let Some(m) = first {
                batches.absorb(m)?;
            }
            return Ok(Box::new(batches));
        }
        Err(unavailable(last))
    }
}

/// The batches of one `ColumnarScan` answer, fetched a message at a time
/// as they are consumed.
struct RemoteStream {
    transport: Arc<GrpcTransport>,
    stream: Option<Streaming<ColumnarScanResponse>>,
    ready: VecDeque<RecordBatch>,
    done: bool,
}

impl RemoteStream {
    fn absorb(&mut self, message: ColumnarScanResponse) -> Result<(), RemoteError> {
        if !message.unavailable.is_empty() {
            return Err(RemoteError::Unavailable(message.unavailable));
        }
        let batches = decode_batches(&message.ipc).map_err(|e| {
            RemoteError::Unavailable(format!("an answer that does not decode: {e}"))
        })?;
        self.ready.extend(batches);
        Ok(())
    }

    fn fetch(&mut self) -> Result<(), String> {
        let Some(mut stream) = self.stream.take() else {
            self.done = true;
            return Ok(());
        };
        let next = self.transport.wait(
            async move {
                let message = stream.message().await;
                (stream, message)
            },
            NEXT_ANSWER,
        )?;
        let (stream, message) = next;
        match message.map_err(|s| s.message().to_string())? {
            Some(m) => {
                self.stream = Some(stream);
                self.absorb(m).map_err(|e| match e {
                    RemoteError::Unavailable(why) => why,
                    RemoteError::Locked(_) => "a lock met mid-scan".into(),
                })
            }
            None => {
                self.done = true;
                Ok(())
            }
        }
    }
}

impl Iterator for RemoteStream {
    type Item = Result<RecordBatch, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(b) = self.ready.pop_front() {
                return Some(Ok(b));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fetch() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};

    #[test]
    fn batches_and_schemas_cross_as_arrow_ipc_unchanged() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
                Arc::new(StringArray::from(vec![Some("a"), Some("b"), None])),
            ],
        )
        .unwrap();
        let back = decode_batches(&encode_batch(&batch).unwrap()).unwrap();
        assert_eq!(back, vec![batch]);
        assert_eq!(
            decode_schema(&encode_schema(&schema).unwrap()).unwrap(),
            schema
        );
        assert!(decode_schema(b"not arrow").is_err());
    }
}
