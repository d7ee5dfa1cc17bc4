//! Local auth: a host presents its tenant's local token as `Authorization: Bearer`,
//! `X-API-Key` or `?key=` (mod_cidlookup and 3CX can only send that). Tokens are compared in
//! constant time; a wrong or missing token is 401 and no lookup is made.

use std::sync::Arc;

use axum::extract::{Request, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::{State, Tenant};

/// The token a request presents, if any.
fn presented(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let header_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    if let Some(t) = bearer.or(header_key) {
        return Some(t.trim().to_string());
    }
    query.and_then(|q| {
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == "key").then(|| percent_decode(v))
        })
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The tenant whose token this is: every tenant's token is compared, each in constant time.
pub(crate) fn tenant_for(state: &State, token: &str) -> Option<Arc<Tenant>> {
    let mut found = None;
    for t in &state.tenants {
        if bool::from(t.token.expose().as_bytes().ct_eq(token.as_bytes())) {
            found = Some(t.clone());
        }
    }
    found
}

/// Middleware: the request's tenant into its extensions, or 401.
pub(crate) async fn require_tenant(
    AxState(state): AxState<Arc<State>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = presented(request.headers(), request.uri().query());
    match token.and_then(|t| tenant_for(&state, &t)) {
        Some(tenant) => {
            request.extensions_mut().insert(tenant);
            next.run(request).await
        }
        None => {
            state.metrics.unauthorized();
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "unauthorized\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_headers_and_query() {
        let mut h = HeaderMap::new();
        assert_eq!(
            presented(&h, Some("number=1&key=a%2Bb%3D")),
            Some("a+b=".into())
        );
        assert_eq!(presented(&h, Some("number=1")), None);
        h.insert("authorization", "Bearer  tok ".parse().unwrap());
        assert_eq!(presented(&h, Some("key=other")), Some("tok".into()));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
