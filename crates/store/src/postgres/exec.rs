//! The PostgreSQL [`Exec`]: runs the shared statements on a pooled client or a
//! transaction, binds [`Param`]s and reads rows.

use super::errors::map;
use crate::StoreError;
use crate::sql::{Dialect, Exec, Param, Query, SqlRow, unreadable};
use bytes::BytesMut;
use deadpool_postgres::GenericClient;
use plinth_core::schema::ValueKind;
use plinth_core::{Date, Decimal, RecordId, Timestamp, Value};
use std::error::Error;
use time::OffsetDateTime;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{Row, Statement};
use uuid::Uuid;

type BoxError = Box<dyn Error + Sync + Send>;

/// A timestamp as `timestamptz`.
fn ts(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.as_micros()) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A `timestamptz` as a timestamp (microseconds; PostgreSQL keeps no finer).
fn from_ts(t: OffsetDateTime) -> Result<Timestamp, StoreError> {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1000))
        .ok()
        .and_then(Timestamp::from_micros)
        .ok_or_else(|| unreadable("timestamp"))
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Text(s) => (&**s).to_sql(ty, out),
            Self::Int(i) => i.to_sql(ty, out),
            Self::Float(f) => f.to_sql(ty, out),
            Self::Bool(b) => b.to_sql(ty, out),
            Self::Time(t) => ts(*t).to_sql(ty, out),
            Self::Uuid(u) => u.to_sql(ty, out),
            Self::Json(j) => j.to_sql(ty, out),
            Self::Date(d) => d.as_time().to_sql(ty, out),
            Self::Array(items) => Param::array_json(items).to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    /// A NULL fits a column of any type; any other value is checked by its own type.
    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Text(s) => (&**s).to_sql_checked(ty, out),
            Self::Int(i) => i.to_sql_checked(ty, out),
            Self::Float(f) => f.to_sql_checked(ty, out),
            Self::Bool(b) => b.to_sql_checked(ty, out),
            Self::Time(t) => ts(*t).to_sql_checked(ty, out),
            Self::Uuid(u) => u.to_sql_checked(ty, out),
            Self::Json(j) => j.to_sql_checked(ty, out),
            Self::Date(d) => d.as_time().to_sql_checked(ty, out),
            Self::Array(items) => Param::array_json(items).to_sql_checked(ty, out),
        }
    }
}

/// A pooled client or a transaction, as an [`Exec`].
pub(super) struct Pg<'c, C>(pub(super) &'c C);

impl<C: GenericClient> Pg<'_, C> {
    /// The prepared statement: kept per connection when the query is hot, else prepared for
    /// this one use (as the driver does for a query given as text).
    async fn statement(&self, q: &Query<'_>) -> Result<Statement, StoreError> {
        if q.cached {
            self.0.prepare_cached(&q.sql).await
        } else {
            self.0.prepare(&q.sql).await
        }
        .map_err(map)
    }
}

fn params<'q>(q: &'q Query<'_>) -> Vec<&'q (dyn ToSql + Sync)> {
    q.params.iter().map(|p| p as _).collect()
}

impl<C: GenericClient> Exec for Pg<'_, C> {
    const DIALECT: Dialect = Dialect::Postgres;
    type Row<'r> = Row;
    type Prepared = Statement;

    async fn rows<T>(
        &self,
        q: &Query<'_>,
        f: impl FnMut(&Row) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError> {
        let stmt = self.statement(q).await?;
        let rows = self.0.query(&stmt, &params(q)).await.map_err(map)?;
        rows.iter().map(f).collect()
    }

    async fn row<T>(
        &self,
        q: &Query<'_>,
        f: impl FnOnce(&Row) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        let stmt = self.statement(q).await?;
        let row = self.0.query_opt(&stmt, &params(q)).await.map_err(map)?;
        row.as_ref().map(f).transpose()
    }

    async fn execute(&self, q: &Query<'_>) -> Result<u64, StoreError> {
        let stmt = self.statement(q).await?;
        self.0.execute(&stmt, &params(q)).await.map_err(map)
    }

    async fn batch(&self, sql: &str) -> Result<(), StoreError> {
        self.0.batch_execute(sql).await.map_err(map)
    }

    async fn prepare(&self, q: &Query<'_>) -> Result<Statement, StoreError> {
        self.statement(q).await
    }

    async fn execute_prepared(&self, p: &Statement, q: &Query<'_>) -> Result<u64, StoreError> {
        self.0.execute(p, &params(q)).await.map_err(map)
    }

    async fn row_prepared<T>(
        &self,
        p: &Statement,
        q: &Query<'_>,
        f: impl FnOnce(&Row) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        let row = self.0.query_opt(p, &params(q)).await.map_err(map)?;
        row.as_ref().map(f).transpose()
    }
}

fn get<'r, T: tokio_postgres::types::FromSql<'r>>(row: &'r Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i).map_err(StoreError::internal)
}

impl SqlRow for Row {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        get(self, i)
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        get(self, i)
    }

    fn opt_uuid(&self, i: usize) -> Result<Option<Uuid>, StoreError> {
        get(self, i)
    }

    fn opt_time(&self, i: usize) -> Result<Option<Timestamp>, StoreError> {
        get::<Option<OffsetDateTime>>(self, i)?
            .map(from_ts)
            .transpose()
    }

    fn value(&self, i: usize, kind: ValueKind) -> Result<Value, StoreError> {
        Ok(match kind {
            ValueKind::Text => get::<Option<String>>(self, i)?.map_or(Value::Null, Value::Text),
            ValueKind::Integer => get::<Option<i64>>(self, i)?.map_or(Value::Null, Value::Integer),
            ValueKind::Float => get::<Option<f64>>(self, i)?.map_or(Value::Null, Value::Float),
            ValueKind::Boolean => get::<Option<bool>>(self, i)?.map_or(Value::Null, Value::Boolean),
            ValueKind::Datetime => self.opt_time(i)?.map_or(Value::Null, Value::Datetime),
            ValueKind::Json => {
                get::<Option<serde_json::Value>>(self, i)?.map_or(Value::Null, Value::Json)
            }
            ValueKind::Uuid => get::<Option<Uuid>>(self, i)?
                .map_or(Value::Null, |u| Value::Reference(RecordId::from_uuid(u))),
            ValueKind::Date => match get::<Option<time::Date>>(self, i)? {
                None => Value::Null,
                Some(d) => Value::Date(Date::from_time(d).ok_or_else(|| unreadable("date"))?),
            },
            ValueKind::Decimal(scale) => match get::<Option<i64>>(self, i)? {
                None => Value::Null,
                Some(u) => Value::Decimal(
                    Decimal::from_units(u, scale).ok_or_else(|| unreadable("decimal"))?,
                ),
            },
            kind @ ValueKind::Array(_) => match get::<Option<serde_json::Value>>(self, i)? {
                None => Value::Null,
                Some(j) => Value::from_json(kind, &j).ok_or_else(|| unreadable("array"))?,
            },
        })
    }
}
