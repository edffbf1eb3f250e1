//! The catalog seen as DataFusion catalog and schema providers: each MySQL
//! database a schema of catalog `def`, and `information_schema`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr as DfExpr;
use datafusion::sql::sqlparser::ast::Statement;

use crate::catalog::Catalog;
use crate::catalog::ViewDef;
use crate::error::Error;
use crate::parse;
use crate::plan::arrow::arrow_schema;
use crate::plan::rewrite::prepare;
use crate::plan::row_table::RowTable;
use crate::plan::run::context;
use crate::plan::scope::Scope;
use crate::table::infoschema;

/// The catalog name every database lives under, as in MySQL's
/// `information_schema` (`TABLE_CATALOG = 'def'`).
pub(crate) const CATALOG: &str = "def";

pub(crate) struct DuetCatalog {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) scope: Arc<Scope>,
}

impl fmt::Debug for DuetCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DuetCatalog")
            .field("version", &self.catalog.version)
            .finish()
    }
}

impl CatalogProvider for DuetCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.catalog
            .databases()
            .map(|d| d.name.to_ascii_lowercase())
            .chain([infoschema::NAME.to_string()])
            .collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name.eq_ignore_ascii_case(infoschema::NAME) {
            return Some(Arc::new(InfoSchema {
                catalog: Arc::clone(&self.catalog),
                scope: Arc::clone(&self.scope),
            }));
        }
        let db = self.catalog.database(name)?;
        Some(Arc::new(DuetSchema {
            database: db.name.clone(),
            catalog: Arc::clone(&self.catalog),
            scope: Arc::clone(&self.scope),
        }))
    }
}

/// `information_schema`, built from the statement's catalog.
pub(crate) struct InfoSchema {
    catalog: Arc<Catalog>,
    scope: Arc<Scope>,
}

impl fmt::Debug for InfoSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfoSchema").finish_non_exhaustive()
    }
}

#[async_trait]
impl SchemaProvider for InfoSchema {
    fn table_names(&self) -> Vec<String> {
        infoschema::TABLES.iter().map(|t| t.to_string()).collect()
    }

    async fn table(
        &self,
        name: &str,
    ) -> std::result::Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        self.scope.catalog_read.store(true, Ordering::Relaxed);
        Ok(infoschema::table(
            &self.catalog,
            self.scope.source.as_ref(),
            &name.to_ascii_lowercase(),
        ))
    }

    fn table_exist(&self, name: &str) -> bool {
        infoschema::TABLES.contains(&name.to_ascii_lowercase().as_str())
    }
}

pub(crate) struct DuetSchema {
    database: String,
    catalog: Arc<Catalog>,
    scope: Arc<Scope>,
}

impl fmt::Debug for DuetSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DuetSchema")
            .field("database", &self.database)
            .finish()
    }
}

#[async_trait]
impl SchemaProvider for DuetSchema {
    fn table_names(&self) -> Vec<String> {
        self.catalog
            .tables(&self.database)
            .iter()
            .map(|t| t.name.to_ascii_lowercase())
            .collect()
    }

    async fn table(
        &self,
        name: &str,
    ) -> std::result::Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        let Some(t) = self.catalog.table(&self.database, name) else {
            return Ok(None);
        };
        if let Some(view) = &t.view {
            return self.view(view).await.map(Some);
        }
        let with_handle = self.scope.handle_table == Some(t.id);
        Ok(Some(Arc::new(RowTable {
            schema: arrow_schema(t, &self.database, with_handle),
            info: Arc::clone(t),
            database: self.database.clone(),
            with_handle,
        }) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.catalog.table(&self.database, name).is_some()
    }
}

impl DuetSchema {
    /// A view, planned in this statement's scope (its snapshot and
    /// routing), its columns named as the view declares.
    async fn view(
        &self,
        view: &ViewDef,
    ) -> std::result::Result<Arc<dyn TableProvider>, DataFusionError> {
        let external = |e: Error| DataFusionError::External(Box::new(e));
        let Statement::Query(mut query) = parse::parse_one(&view.sql).map_err(external)? else {
            return Err(external(Error::Internal(
                "a view that is not a query".into(),
            )));
        };
        prepare(&view.sql, &mut query).map_err(external)?;
        let ctx = context(
            Arc::clone(&self.catalog),
            Arc::clone(&self.scope),
            Some(&self.database),
        );
        let statement =
            datafusion::sql::parser::Statement::Statement(Box::new(Statement::Query(query)));
        let plan = ctx.state().statement_to_plan(statement).await?;
        let columns: Vec<DfExpr> = plan
            .schema()
            .columns()
            .into_iter()
            .zip(&view.columns)
            .map(|(c, name)| DfExpr::Column(c).alias(name.to_ascii_lowercase()))
            .collect();
        let plan = datafusion::logical_expr::LogicalPlanBuilder::from(plan)
            .project(columns)?
            .build()?;
        Ok(Arc::new(datafusion::catalog::view::ViewTable::new(
            plan,
            Some(view.sql.clone()),
        )))
    }
}
