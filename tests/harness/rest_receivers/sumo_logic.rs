//! A Sumo Logic HTTP source, `POST /receiver/v1/http/{code}`: the right code (else 401);
//! `Content-Encoding` none, gzip or deflate; ≤ 1,000,000 bytes uncompressed (else 413, a
//! violation); one message per line. Answers 200.

use serde_json::Value;

use super::{answer, refuse, Checked, Contract, Profile, Request};

pub const SUMO_MAX_REQUEST_BYTES: usize = 1_000_000;

/// The source's collector code (the last segment of its URL).
#[derive(Debug, Clone)]
pub struct SumoLogic {
    pub code: String,
}

impl Contract for SumoLogic {
    fn profile(&self) -> Profile {
        Profile { name: "Sumo Logic", default_max_request_bytes: SUMO_MAX_REQUEST_BYTES, accepts_deflate: true, unsupported_encoding_answer: "" }
    }

    /// The source's full URL.
    fn url(&self, base: &str) -> String {
        format!("{base}/receiver/v1/http/{}", self.code)
    }

    fn check(&self, request: &Request<'_>) -> Checked {
        let (path, body) = (request.path, request.body);
        let SumoLogic { code } = self;
        let Some(given) = path.strip_prefix("/receiver/v1/http/") else { return refuse(404, "", format!("path {path}")) };
        if given != code {
            return answer(401, "");
        }
        if request.too_large() {
            return request.answer_too_large(Some(SUMO_MAX_REQUEST_BYTES), String::new());
        }
        let events = body
            .split(|b| *b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(|l| serde_json::from_slice(l).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(l).into_owned())))
            .collect();
        Checked { events: Some(events), ..answer(200, "") }
    }
}
