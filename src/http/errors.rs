//! How the HTTP surfaces answer an error: [`ErrorBody`], a stable kind for programs and a
//! sentence for people (the `user_message()` of the adapter-facing error, never an internal
//! error string), with the status code and `Retry-After` that go with it.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use footnote_adapter::{AskError, GatewayError, IngestError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::mcp::Refused;

/// An error reply: a stable kind for programs and a sentence for people.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable kind, such as `denied`, `rate_limited`, `too_large`.
    pub error: String,
    /// Safe to show to a user.
    pub message: String,
}

/// An error as an HTTP response.
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// The sentence for people.
    pub fn message(&self) -> String {
        self.body.message.clone()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(wait) = self.retry_after {
            response.headers_mut().insert(RETRY_AFTER, wait.as_secs().max(1).into());
        }
        response
    }
}

pub(super) fn kind<T: Serialize>(e: &T) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

impl From<AskError> for ApiError {
    fn from(e: AskError) -> Self {
        let status = match &e {
            AskError::Invalid(_) => StatusCode::BAD_REQUEST,
            AskError::Denied => StatusCode::FORBIDDEN,
            AskError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            AskError::Unavailable(_) | AskError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            AskError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            AskError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let retry_after = match &e {
            AskError::RateLimited(wait) => Some(*wait),
            AskError::Unavailable(_) | AskError::ShuttingDown => Some(Duration::from_secs(30)),
            _ => None,
        };
        ApiError { status, body: ErrorBody { error: kind(&e), message: e.user_message() }, retry_after }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        let status = match &e {
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::Empty | IngestError::Unreadable(_) | IngestError::Timeout => StatusCode::UNPROCESSABLE_ENTITY,
            IngestError::Denied => StatusCode::FORBIDDEN,
            IngestError::NameTaken { .. } => StatusCode::CONFLICT,
            IngestError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let retry_after = match &e {
            IngestError::RateLimited(wait) => Some(*wait),
            _ => None,
        };
        ApiError { status, body: ErrorBody { error: kind(&e), message: e.user_message() }, retry_after }
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        let status = match &e {
            GatewayError::Denied => StatusCode::FORBIDDEN,
            GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError { status, body: ErrorBody { error: kind(&e), message: e.user_message() }, retry_after: None }
    }
}

impl From<Refused> for ApiError {
    fn from(e: Refused) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            body: ErrorBody { error: "out_of_scope".into(), message: e.0 },
            retry_after: None,
        }
    }
}

pub(super) fn bad_request(error: &str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        body: ErrorBody { error: error.into(), message: message.into() },
        retry_after: None,
    }
}
