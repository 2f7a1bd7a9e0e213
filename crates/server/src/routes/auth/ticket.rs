//! `POST /api/v1/events/ticket`: a short-lived ticket a browser opens a change feed with
//! (`EventSource` cannot send an `Authorization` header).

use crate::auth::TICKET_TTL;
use crate::error::ApiError;
use crate::extract::{Caller, credential};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use plinth_core::{ErrorCode, Role};
use serde::Serialize;
use utoipa::ToSchema;

/// A stream ticket, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StreamTicket {
    /// The ticket: send it as `?ticket=` to `GET /api/v1/{model}/events` or
    /// `GET /api/v1/events`, nowhere else (it is no Bearer credential).
    ticket: String,
    /// Seconds the ticket may be used to open (or reopen) a stream.
    #[schema(minimum = 1)]
    expires_in: u64,
}

/// Makes a ticket from the caller's credential (an access token or an API key), bound to
/// it: the ticket, and the streams it opens, stop working when that credential does.
#[utoipa::path(post, path = "/api/v1/events/ticket", tag = "events",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "a ticket for the change-feed streams", body = StreamTicket),
        (status = 401, description = "no credential (guests need no ticket), or a bad one"),
    ))]
#[tracing::instrument(skip_all)]
pub(super) async fn create_ticket(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Reply, ApiError> {
    if caller.0.role() == Role::Guest {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "authentication required: a guest opens streams without a ticket",
        ));
    }
    let (ticket, expires_in) = state
        .auth()
        .issue_ticket(state.store().as_ref(), credential(&headers)?)
        .await?;
    debug_assert_eq!(expires_in, TICKET_TTL.as_secs());
    Ok(Reply::data(&StreamTicket { ticket, expires_in })?.with_status(StatusCode::CREATED))
}
