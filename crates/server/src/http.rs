//! HTTP routes: registration, client configuration, health, and the WebSocket upgrade.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anonchat_proto::wire::{
    DeleteRequest, ErrorCode, RegisterRequest, ServerConfig, ServerEnvelope, ServerMsg,
};
use anonchat_proto::{limits, pow};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::time::Instant;

use crate::app::App;
use crate::clock::unix_now;
use crate::metrics::{Code, CodeLabel};
use crate::store::StoreError;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/config", get(config))
        .route("/v1/register", post(register))
        .route("/v1/delete", post(delete))
        .route("/v1/ws", get(crate::ws::upgrade))
        .layer(DefaultBodyLimit::max(limits::MAX_HTTP_BODY))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(app)
}

/// Errors axum answers by itself (a body over the limit, an unparsable one) get the same JSON
/// envelope as every other error, so a client reads one shape.
async fn json_errors(resp: Response) -> Response {
    let detail = match resp.status() {
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "the request body is over the limit of {} bytes",
            limits::MAX_HTTP_BODY
        ),
        _ => return resp,
    };
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::BadRequest,
        Some(detail),
    )
}

fn error(status: StatusCode, code: ErrorCode, detail: Option<String>) -> Response {
    (status, Json(ServerEnvelope::error(None, code, detail))).into_response()
}

async fn config(State(app): State<Arc<App>>) -> Json<ServerConfig> {
    Json(ServerConfig {
        v: anonchat_proto::VERSION,
        register_pow_bits: app.pow_bits,
        contact_pow_bits: app.hub.contact_pow_bits(),
        ice_servers: app.hub.public_ice_servers(),
    })
}

async fn register(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let resp = register_inner(&app, peer, &headers, &body).await;
    let code = match resp.status() {
        StatusCode::OK => Code::ok,
        StatusCode::CONFLICT => Code::taken,
        StatusCode::TOO_MANY_REQUESTS => Code::rate_limited,
        StatusCode::INTERNAL_SERVER_ERROR => {
            app.hub.metrics().store_errors.inc();
            Code::internal
        }
        _ => Code::bad_request,
    };
    app.hub
        .metrics()
        .registrations
        .get_or_create(&CodeLabel { code })
        .inc();
    resp
}

async fn register_inner(
    app: &App,
    peer: SocketAddr,
    headers: &axum::http::HeaderMap,
    body: &Bytes,
) -> Response {
    // An answer says whether a name is taken (names are unique): priced like a lookup (a
    // per-address bucket of the same size), on top of the registration's proof of work (P9).
    if !app.hub.allow_register(app.client_key(peer, headers)).await {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            Some("too many requests; try again in a minute".into()),
        );
    }
    let req: RegisterRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                Some(e.to_string()),
            )
        }
    };
    if req.v != anonchat_proto::VERSION {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            Some("unsupported version".into()),
        );
    }
    let resource = pow::register_resource(&req.username, &req.ak_pub);
    if req.pow.check(&resource, app.pow_bits, unix_now()).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            Some(format!("proof of work of {} bits required", app.pow_bits)),
        );
    }
    if req.device_cert.username != req.username || req.device_cert.verify(&req.ak_pub).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            Some("device certificate is not signed by the account key".into()),
        );
    }
    {
        let mut spent = app.spent.lock().unwrap_or_else(|p| p.into_inner());
        let max_age = Duration::from_secs(2 * pow::MAX_AGE_SECS);
        spent.retain(|_, at| at.elapsed() < max_age);
        if spent
            .insert(req.pow.id(&resource), Instant::now())
            .is_some()
        {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                Some("proof of work already spent".into()),
            );
        }
    }
    match app
        .hub
        .store()
        .tombstoned(&app.hub.name_hash(&req.username), unix_now() as i64)
        .await
    {
        Ok(false) => {}
        Ok(true) => return error(StatusCode::CONFLICT, ErrorCode::Taken, None),
        Err(e) => {
            tracing::error!(error = %e, "registration failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, None);
        }
    }
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    match app
        .hub
        .store()
        .register(&req.username, &req.ak_pub, &req.device_cert, &salt)
        .await
    {
        Ok(()) => {
            if !app.quiet {
                tracing::info!("account registered");
            }
            (
                StatusCode::OK,
                Json(ServerEnvelope::new(None, ServerMsg::Ok)),
            )
                .into_response()
        }
        Err(StoreError::Taken) => error(StatusCode::CONFLICT, ErrorCode::Taken, None),
        Err(e) => {
            tracing::error!(error = %e, "registration failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, None)
        }
    }
}

/// A signed deletion without a session (a burner's, resent after its keys were erased). Whether
/// a name exists shows in the answer, so it is priced like a lookup: the registration's
/// per-address bucket (P9).
async fn delete(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    if !app.hub.allow_register(app.client_key(peer, &headers)).await {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            Some("too many requests; try again in a minute".into()),
        );
    }
    let req = match serde_json::from_slice::<DeleteRequest>(&body) {
        Ok(r) if r.v == anonchat_proto::VERSION => r,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                Some("unsupported version".into()),
            )
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                Some(e.to_string()),
            )
        }
    };
    match app.hub.delete_signed(&req.username, req.ts, &req.sig).await {
        Ok(msg) => (StatusCode::OK, Json(ServerEnvelope::new(None, msg))).into_response(),
        Err(refusal) => {
            let status = match refusal.code() {
                ErrorCode::NotFound => StatusCode::NOT_FOUND,
                ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            let detail = match &refusal {
                crate::hub::Refusal::BadRequest(d) => Some(d.clone()),
                _ => None,
            };
            error(status, refusal.code(), detail)
        }
    }
}
