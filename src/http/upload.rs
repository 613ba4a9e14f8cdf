//! Reading a multipart upload (the API's `POST /api/documents` and the web page's form): an
//! optional `collection` field and one `file` field, within the route's body limit.

use axum::extract::Multipart;
use axum::http::StatusCode;
use footnote_adapter::{IngestError, Upload};
use utoipa::ToSchema;

use super::errors::{ApiError, bad_request};

/// A file upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Collection to add it to (default `default`); send it before the file.
    collection: Option<String>,
}

/// Reads a multipart upload: an optional `collection` field and one `file` field.
pub(super) async fn read_upload(multipart: &mut Multipart) -> Result<(Option<String>, Upload), ApiError> {
    let too_large = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from(IngestError::TooLarge("it is over the upload limit".into()))
        } else {
            bad_request("bad_upload", "The upload is not a valid multipart form.")
        }
    };
    let mut collection = None;
    while let Some(field) = multipart.next_field().await.map_err(too_large)? {
        match field.name() {
            Some("collection") => collection = Some(field.text().await.map_err(too_large)?),
            Some("file") => {
                // A document of the same name is replaced: an upload without a name gets one of
                // its own, so that it never replaces another nameless upload.
                let file_name = match field.file_name().map(str::trim).filter(|n| !n.is_empty()) {
                    Some(name) => name.to_owned(),
                    None => format!("upload-{:08x}", rand::random::<u32>()),
                };
                let mime = field.content_type().map(str::to_owned);
                let bytes = field.bytes().await.map_err(too_large)?.to_vec();
                return Ok((collection, Upload { file_name, mime, bytes, origin: Default::default() }));
            }
            _ => {}
        }
    }
    Err(bad_request("no_file", "Send the file in a multipart field named `file`."))
}
