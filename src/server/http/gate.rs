//! `POST /api/v1/gate`: an upload that is judged before it is stored. The body and the
//! run metadata are those of `/api/v1/uploads`; `ingest=false` only judges, `window`
//! sets the history that decides "known flaky", `require_same_sha=true` forgives only tests
//! proven flaky on one commit. The answer is the gate's verdict (the
//! JSON of `flakehound gate --json`) with `summary`, the ingest summary (null when not
//! stored), whatever the verdict: a failing verdict is an answer, not an error.

use super::*;
use crate::gate::{judge, GateOptions};
use crate::model::TestCase;
use crate::store::Store;

/// Whether to store the run, the gate's options, and the upload's own parameters.
type GateParams = (bool, GateOptions, Vec<(String, String)>);

/// Split off the gate's own parameters; the rest are the upload's.
fn gate_params(params: Vec<(String, String)>) -> Result<GateParams, String> {
    let mut ingest = true;
    let mut opts = GateOptions::default();
    let mut rest = Vec::new();
    for (k, v) in params {
        match k.as_str() {
            "ingest" => {
                ingest = match v.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => return Err(format!("ingest {other:?}: expected true or false")),
                }
            }
            "require_same_sha" => {
                opts.require_same_sha = match v.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => {
                        return Err(format!(
                            "require_same_sha {other:?}: expected true or false"
                        ))
                    }
                }
            }
            "window" => {
                opts.window_s = api::parse_duration(&v).map_err(|e| format!("window: {e}"))?
            }
            _ => rest.push((k, v)),
        }
    }
    Ok((ingest, opts, rest))
}

pub(super) async fn gate(
    axum::extract::State(state): axum::extract::State<State>,
    q: Pairs,
    req: Request,
) -> Response {
    let params = match query_pairs(q).and_then(gate_params) {
        Ok(p) => p,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let (ingest, opts, params) = params;
    let (meta, known, name) = match upload_meta(&params) {
        Ok(m) => m,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    // The same limits as an upload: the body within --max-body and the memory budget, the
    // slot taken once it is whole, the parse stopped when the request is abandoned.
    let (body, charge, permit) = match admit_body(&state, req).await {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal,
    };
    let max_unpacked = state.0.max_unpacked;
    let db = state.0.db.clone();
    let cancel = Arc::new(AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    // Unpack, parse and judge on the blocking pool, against the history before this run.
    let judged = tokio::task::spawn_blocking(move || {
        let upload = prepare(&body, meta, known, &name, max_unpacked, charge, &cancel)?;
        let cases: Vec<TestCase> = upload
            .files
            .iter()
            .flat_map(|f| f.report.cases.iter().cloned())
            .collect();
        // Judged at the start the run is stored with, so that asking again once it is
        // stored (a retried request) measures the same history.
        let meta = RunMeta {
            started_at: upload.started_at(),
            ..upload.meta.clone()
        };
        let verdict = Store::open_read_only(&db)
            .and_then(|store| judge(Some(&store), &meta, &cases, upload.rejected.clone(), &opts))
            .map_err(|e| UnpackError::Malformed(format!("cannot judge: {e}")));
        Ok::<_, UnpackError>((upload, verdict))
    })
    .await;
    let (upload, verdict) = match judged {
        Ok(Ok((u, Ok(v)))) => (u, v),
        Ok(Ok((_, Err(UnpackError::Malformed(m))))) => {
            tracing::error!(error = %m, "gate failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, m);
        }
        Ok(Ok((_, Err(e)))) | Ok(Err(e)) => {
            return match e {
                UnpackError::TooLarge(m) => error(StatusCode::PAYLOAD_TOO_LARGE, m),
                UnpackError::Unsafe(m) => error(StatusCode::UNPROCESSABLE_ENTITY, m),
                UnpackError::Malformed(m) => error(StatusCode::BAD_REQUEST, m),
                UnpackError::Busy(m) => busy(&m),
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "gate task failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the upload");
        }
    };
    if upload.files.is_empty() && upload.rejected.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "the upload holds no report files (*.xml, *.junit-xml, *.xml.gz)",
        );
    }
    let summary = if ingest && !upload.files.is_empty() {
        let (reply, answer) = oneshot::channel();
        if state.0.writer.send(Job { upload, reply }).await.is_err() {
            return busy("the server is shutting down");
        }
        match answer.await.map(|a| a.reply) {
            Ok(Ok(stored)) => Some(stored.summary),
            // The cause (with the database's path) is in the server's log, not the answer.
            Ok(Err(_)) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the upload could not be stored; see the server's log",
                )
            }
            Err(_) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the writer stopped before storing the upload",
                )
            }
        }
    } else {
        None
    };
    drop(permit);
    let mut value = serde_json::to_value(&verdict).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "summary".into(),
            serde_json::to_value(summary).unwrap_or_default(),
        );
    }
    Json(value).into_response()
}

#[cfg(test)]
mod tests {
    use super::gate_params;

    #[test]
    fn gate_parameters_are_split_from_the_upload_ones() {
        let p = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let (ingest, opts, rest) =
            gate_params(p(&[("ingest", "false"), ("window", "2w"), ("job", "unit")])).unwrap();
        assert!(!ingest);
        assert_eq!(opts.window_s, 14 * 86_400);
        assert_eq!(rest, p(&[("job", "unit")]));
        assert!(gate_params(p(&[("ingest", "maybe")])).is_err());
        assert!(gate_params(p(&[("window", "30")]))
            .unwrap_err()
            .contains("add a unit"));
    }
}
