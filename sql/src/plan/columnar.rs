//! The SQL layer's side of the columnar replica: it tells the replica what
//! the catalog's committed table definitions mean ([`CatalogSchemas`], the
//! replica's [`SchemaSource`]), using the same row decoding and the same
//! Arrow conversion as the row store's scans, so that both engines give
//! the same answer by construction.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use duet_columnar::{LayerConfig, Replica, SchemaChange, SchemaSource, TableCodec};
use duet_storage::codec::Datum;

use crate::catalog;
use crate::catalog::TableInfo;
use crate::plan::arrow;
use crate::table;

/// Decodes the catalog's `m\x02` table definitions for the replica.
#[derive(Debug, Default)]
pub struct CatalogSchemas;

impl SchemaSource for CatalogSchemas {
    fn is_schema_key(&self, key: &[u8]) -> bool {
        catalog::is_table_key(key)
    }

    fn decode(&self, _key: &[u8], value: &[u8]) -> Result<SchemaChange, String> {
        let info: TableInfo = serde_json::from_slice(value)
            .map_err(|e| format!("a table definition that does not parse: {e}"))?;
        if info.view.is_some() {
            return Ok(SchemaChange::None);
        }
        if !info.columnar_replica {
            return Ok(SchemaChange::Unreplicated(info.id));
        }
        // Every field nullable: the replica keeps delete marks and columns
        // added later in the same arrays (a query's rows never hold NULL
        // where the table forbids it; its own schema says so).
        let declared = arrow::arrow_schema(&info, "", false);
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(
            declared
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        Ok(SchemaChange::Table(Arc::new(Codec {
            info: Arc::new(info),
            schema,
        })))
    }
}

/// A replica of every table, fed from the catalog, held in memory.
pub fn replica(config: LayerConfig) -> Arc<Replica> {
    Arc::new(Replica::new(Arc::new(CatalogSchemas), config))
}

/// A replica of every table, fed from the catalog, with its stable layer
/// under `dir`: from the checkpoint there and the learner's log (`snap`,
/// the learner store's engine), or from snapshots of every region.
pub fn open_replica<S: duet_storage::engine::Snapshot>(
    config: LayerConfig,
    dir: &std::path::Path,
    snap: &S,
) -> duet_columnar::Result<Arc<Replica>> {
    Ok(Arc::new(Replica::open(
        Arc::new(CatalogSchemas),
        config,
        dir,
        snap,
    )?))
}

/// One table definition as the replica uses it.
#[derive(Debug)]
struct Codec {
    info: Arc<TableInfo>,
    schema: SchemaRef,
}

impl TableCodec for Codec {
    fn table_id(&self) -> i64 {
        self.info.id
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn column_ids(&self) -> Vec<u32> {
        self.info.columns.iter().map(|c| c.id).collect()
    }

    fn decode(&self, value: &[u8]) -> Result<Vec<Datum>, String> {
        table::decode_value(&self.info, value).map_err(|e| e.to_string())
    }

    fn to_batch(&self, rows: &[Vec<Datum>]) -> Result<RecordBatch, String> {
        arrow::datums_to_batch(&self.info, &self.schema, rows).map_err(|e| e.to_string())
    }
}
