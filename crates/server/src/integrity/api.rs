//! Trailkeeper's integrity API, beside `POST /v1/records`: checkpoints and proofs over
//! HTTP, signed with SigV4 for service `cloudtrail`, parameters in the query string,
//! answers in JSON and errors in AWS's JSON shape (`{"__type", "message"}`).
//!
//! | request | access | answer |
//! |---|---|---|
//! | `GET /v1/integrity/checkpoint[?treeSize=N]` | read | the latest checkpoint of the caller's Region's tree (or the one of size N) |
//! | `POST /v1/integrity/checkpoint` | manage | a checkpoint signed now, once the trees hold every event stored before the call |
//! | `GET /v1/integrity/inclusion-proof?eventId=ID[&treeSize=N]` | read | the event, its leaf, its inclusion path and the checkpoint it is proven against |
//! | `GET /v1/integrity/consistency-proof?firstTreeSize=M[&secondTreeSize=N]` | read | the consistency path between two checkpoints (N defaults to the latest) |
//! | `GET /v1/integrity/trees` | read | every tree the caller reaches, in every Region, with its head and latest checkpoint |
//! | `GET /v1/integrity/digest-chains?trailArn=ARN` | read | the newest digest file the trail wrote in each Region |
//!
//! Every request may name `accountId` (default: the caller's own), if the caller reaches it.
//! The digest chains' heads let `trailkeeper validate-logs --endpoint-url` tell a deleted
//! newest digest from the end of a chain, which the AWS CLI cannot.
//! The inclusion proof is for the event's own tree, whatever Region the request is signed
//! for. Every call is audited, like the CloudTrail API's.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use trailkeeper_core::checkpoint::hash_to_hex;
use trailkeeper_core::merkle::leaf_hash;
use trailkeeper_store::merkle::{MerkleError, TreeId};

use super::checkpoints::SignedCheckpoint;
use crate::api::{ApiError, Caller, ConnectionInfo, authenticate, json_ok, new_request_id, read_body};
use crate::audit;
use crate::cloudtrail::Output;
use crate::delivery;
use crate::identity::Access;
use crate::state::AppState;

/// The integrity API's operations, as their audit records name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    GetCheckpoint,
    SignCheckpoint,
    GetInclusionProof,
    GetConsistencyProof,
    ListTrees,
    GetDigestChains,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::GetCheckpoint => "GetCheckpoint",
            Operation::SignCheckpoint => "SignCheckpoint",
            Operation::GetInclusionProof => "GetInclusionProof",
            Operation::GetConsistencyProof => "GetConsistencyProof",
            Operation::ListTrees => "ListTrees",
            Operation::GetDigestChains => "GetDigestChains",
        }
    }

    fn access(self) -> Access {
        if self == Operation::SignCheckpoint { Access::Manage } else { Access::Read }
    }

    /// The query parameters the operation takes.
    fn parameters(self) -> &'static [&'static str] {
        match self {
            Operation::GetCheckpoint => &["accountId", "treeSize"],
            Operation::SignCheckpoint | Operation::ListTrees => &["accountId"],
            Operation::GetInclusionProof => &["accountId", "eventId", "treeSize"],
            Operation::GetConsistencyProof => &["accountId", "firstTreeSize", "secondTreeSize"],
            Operation::GetDigestChains => &["trailArn"],
        }
    }
}

pub async fn get_checkpoint(
    state: State<AppState>,
    connection: Extension<ConnectionInfo>,
    request: Request,
) -> Response {
    handle(state, connection, request, Operation::GetCheckpoint).await
}

pub async fn sign_checkpoint(
    state: State<AppState>,
    connection: Extension<ConnectionInfo>,
    request: Request,
) -> Response {
    handle(state, connection, request, Operation::SignCheckpoint).await
}

pub async fn inclusion_proof(
    state: State<AppState>,
    connection: Extension<ConnectionInfo>,
    request: Request,
) -> Response {
    handle(state, connection, request, Operation::GetInclusionProof).await
}

pub async fn consistency_proof(
    state: State<AppState>,
    connection: Extension<ConnectionInfo>,
    request: Request,
) -> Response {
    handle(state, connection, request, Operation::GetConsistencyProof).await
}

pub async fn list_trees(state: State<AppState>, connection: Extension<ConnectionInfo>, request: Request) -> Response {
    handle(state, connection, request, Operation::ListTrees).await
}

pub async fn digest_chains(
    state: State<AppState>,
    connection: Extension<ConnectionInfo>,
    request: Request,
) -> Response {
    handle(state, connection, request, Operation::GetDigestChains).await
}

/// The pipeline of every integrity request: body → SigV4 → rate limit → parameters → role
/// → run → audit → answer.
async fn handle(
    State(state): State<AppState>,
    Extension(connection): Extension<ConnectionInfo>,
    request: Request,
    operation: Operation,
) -> Response {
    let request_id = new_request_id();
    let (parts, body) = request.into_parts();
    let result = async {
        let body = read_body(body, state.config.max_request_bytes).await?;
        let caller = authenticate(&state, &connection, &parts, &body, "cloudtrail", &request_id)?;
        if !state.limiter.try_acquire(&caller.principal.access_key_id) {
            return Err(ApiError::throttling());
        }
        let parameters = Parameters::parse(parts.uri.query().unwrap_or(""), operation.parameters());
        let outcome = match &parameters {
            Err(error) => Err(error.clone()),
            Ok(_) if !caller.principal.role.allows(operation.access()) => {
                Err(ApiError::not_authorized(&caller.principal.arn(), operation.name()))
            }
            Ok(parameters) => run(&state, &caller, operation, parameters).await,
        };
        let input = parameters.as_ref().map(Parameters::as_json).unwrap_or_else(|_| json!({}));
        audit::record_call(&state, &caller, operation.name(), operation.access() == Access::Read, &input, &outcome)
            .await?;
        state.metrics.count_operation(operation.name(), outcome.is_ok());
        outcome
    }
    .await;
    match result {
        Ok(output) => json_ok(output.body, "application/json", &request_id),
        Err(error) => {
            let retry_after = error.status == StatusCode::SERVICE_UNAVAILABLE;
            let mut response = error.into_response_with_id(&request_id);
            if retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
    }
}

/// The query parameters of one request, each at most once and each known.
#[derive(Debug, Clone, Default)]
struct Parameters(BTreeMap<String, String>);

impl Parameters {
    fn parse(query: &str, allowed: &[&str]) -> Result<Parameters, ApiError> {
        let mut parameters = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(invalid(format!("Unknown parameter {name:?}; this request takes {}.", allowed.join(", "))));
            }
            if parameters.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(invalid(format!("The parameter {name} is given twice.")));
            }
        }
        Ok(Parameters(parameters))
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn size(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.text(name)
            .map(|text| {
                text.parse::<u64>().map_err(|_| invalid(format!("{name} must be a whole number, not {text:?}.")))
            })
            .transpose()
    }

    fn as_json(&self) -> Value {
        Value::Object(self.0.iter().map(|(name, value)| (name.clone(), Value::String(value.clone()))).collect())
    }

    /// The account the request is about: `accountId`, if the caller reaches it, or the
    /// caller's own.
    fn account(&self, caller: &Caller) -> Result<String, ApiError> {
        match self.text("accountId") {
            None => Ok(caller.principal.account_id.clone()),
            Some(account) if caller.principal.reaches(account) => Ok(account.to_owned()),
            Some(account) => Err(ApiError::client(
                "AccessDeniedException",
                format!("User: {} may not read the integrity records of account {account}", caller.principal.arn()),
            )),
        }
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::client("InvalidParameterException", message)
}

fn checkpoint_not_found(tree: &TreeId, size: Option<u64>) -> ApiError {
    let message = match size {
        Some(size) => {
            format!("No checkpoint of size {size} was signed for account {} in {}.", tree.account_id, tree.region)
        }
        None => format!("No checkpoint has been signed yet for account {} in {}.", tree.account_id, tree.region),
    };
    ApiError::client("CheckpointNotFoundException", message)
}

/// Runs blocking work (tree files, segments, signing) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|_| ApiError::internal())?
}

async fn run(
    state: &AppState,
    caller: &Caller,
    operation: Operation,
    parameters: &Parameters,
) -> Result<Output, ApiError> {
    let account = parameters.account(caller)?;
    let tree = TreeId::new(account.as_str(), caller.region.as_str());
    match operation {
        Operation::GetCheckpoint => {
            let size = parameters.size("treeSize")?;
            let checkpoint = match size {
                Some(size) => state.checkpoints.at_size(&tree, size),
                None => state.checkpoints.latest(&tree),
            };
            let checkpoint = checkpoint.ok_or_else(|| checkpoint_not_found(&tree, size))?;
            Output::read(&json!({ "checkpoint": checkpoint }))
        }
        Operation::SignCheckpoint => {
            let signer = state.clone();
            let signed_tree = tree.clone();
            let signed = blocking(move || {
                super::checkpoint_now(&signer, &signed_tree).map_err(|error| {
                    tracing::error!(%error, tree = %signed_tree, "could not sign a checkpoint");
                    ApiError::internal()
                })
            })
            .await?;
            let Some((checkpoint, created)) = signed else {
                return Err(ApiError::client(
                    "ResourceNotFoundException",
                    format!("Account {} has no events in {} to checkpoint.", tree.account_id, tree.region),
                ));
            };
            Ok(Output::recorded(json!({ "checkpoint": checkpoint, "created": created })))
        }
        Operation::GetInclusionProof => {
            let event_id =
                parameters.text("eventId").ok_or_else(|| invalid("The parameter eventId is required.".into()))?;
            let size = parameters.size("treeSize")?;
            let state = state.clone();
            let (account, event_id) = (account.clone(), event_id.to_owned());
            blocking(move || prove_event(&state, &account, &event_id, size))
                .await
                .and_then(|value| Output::read(&value))
        }
        Operation::GetConsistencyProof => {
            let first_size = parameters
                .size("firstTreeSize")?
                .ok_or_else(|| invalid("The parameter firstTreeSize is required.".into()))?;
            let first = state
                .checkpoints
                .at_size(&tree, first_size)
                .ok_or_else(|| checkpoint_not_found(&tree, Some(first_size)))?;
            let second = match parameters.size("secondTreeSize")? {
                Some(size) => {
                    state.checkpoints.at_size(&tree, size).ok_or_else(|| checkpoint_not_found(&tree, Some(size)))?
                }
                None => state.checkpoints.latest(&tree).ok_or_else(|| checkpoint_not_found(&tree, None))?,
            };
            if first.tree_size > second.tree_size {
                return Err(invalid(format!(
                    "firstTreeSize ({}) must not be larger than secondTreeSize ({}).",
                    first.tree_size, second.tree_size
                )));
            }
            let trees = state.merkle.clone();
            let (old_size, new_size) = (first.tree_size, second.tree_size);
            let proved_tree = tree.clone();
            let path = blocking(move || {
                trees.consistency_proof(&proved_tree, old_size, new_size).map_err(|error| ApiError::from_merkle(&error))
            })
            .await?;
            Output::read(&json!({
                "accountId": tree.account_id,
                "region": tree.region,
                "firstTreeSize": first.tree_size,
                "secondTreeSize": second.tree_size,
                "consistencyPath": path.iter().map(hash_to_hex).collect::<Vec<_>>(),
                "firstCheckpoint": first,
                "secondCheckpoint": second,
            }))
        }
        Operation::ListTrees => {
            let trees: Vec<Value> = state
                .merkle
                .heads()
                .into_iter()
                .filter(|(tree, _)| match parameters.text("accountId") {
                    Some(_) => tree.account_id == account,
                    None => caller.principal.reaches(&tree.account_id),
                })
                .map(|(tree, head)| {
                    json!({
                        "accountId": tree.account_id,
                        "region": tree.region,
                        "treeSize": head.size,
                        "rootHash": hash_to_hex(&head.root),
                        "latestCheckpoint": state.checkpoints.latest(&tree),
                    })
                })
                .collect();
            Output::read(&json!({ "trees": trees, "throughSeq": state.merkle.through_seq() }))
        }
        Operation::GetDigestChains => {
            let arn =
                parameters.text("trailArn").ok_or_else(|| invalid("The parameter trailArn is required.".into()))?;
            let trail = state
                .trails
                .get(arn)
                .filter(|trail| caller.principal.reaches(&trail.account_id))
                .ok_or_else(|| crate::cloudtrail::trails::not_found(arn, &caller.principal.account_id))?;
            let data_dir = state.config.data_dir.clone();
            let newest = blocking(move || {
                delivery::newest_digests(&data_dir, &trail).map_err(|error| {
                    tracing::error!(%error, "could not read a trail's digest chains");
                    ApiError::internal()
                })
            })
            .await?;
            let chains: Vec<Value> = newest
                .into_iter()
                .map(|(region, newest)| json!({ "region": region, "bucket": newest.bucket, "key": newest.key }))
                .collect();
            Output::read(&json!({ "trailArn": arn, "chains": chains }))
        }
    }
}

/// The inclusion proof of one event, against a signed checkpoint of its tree.
fn prove_event(state: &AppState, account: &str, event_id: &str, size: Option<u64>) -> Result<Value, ApiError> {
    let event =
        state.log.find_event(account, event_id).map_err(|error| ApiError::from_store(&error))?.ok_or_else(|| {
            ApiError::client("EventNotFoundException", format!("Account {account} has no event with ID {event_id}."))
        })?;
    let tree = TreeId::new(account, &*event.region);
    let through_seq = state.merkle.through_seq();
    if event.seq > through_seq {
        return Err(ApiError::from_merkle(&MerkleError::NotYetInTree { seq: event.seq, through_seq }));
    }
    let checkpoint: SignedCheckpoint = match size {
        Some(size) => state.checkpoints.at_size(&tree, size).ok_or_else(|| checkpoint_not_found(&tree, Some(size)))?,
        None => state.checkpoints.latest(&tree).ok_or_else(|| not_checkpointed(state, event_id, &tree, None))?,
    };
    let proof = state.merkle.inclusion_proof(&tree, event.seq, checkpoint.tree_size).map_err(|error| match error {
        MerkleError::LeafOutsideSize { leaf_index, .. } => {
            not_checkpointed(state, event_id, &tree, Some((leaf_index, checkpoint.tree_size)))
        }
        other => ApiError::from_merkle(&other),
    })?;
    let text = std::str::from_utf8(&event.json).map_err(|_| ApiError::internal())?;
    Ok(json!({
        "eventId": event_id,
        "accountId": tree.account_id,
        "region": tree.region,
        "seq": event.seq,
        "leafIndex": proof.leaf_index,
        "treeSize": proof.tree_size,
        "leafHash": hash_to_hex(&leaf_hash(&event.json)),
        "inclusionPath": proof.path.iter().map(hash_to_hex).collect::<Vec<_>>(),
        "event": text,
        "checkpoint": checkpoint,
    }))
}

/// The event is a leaf, but no checkpoint covers it yet: retry after the next one.
fn not_checkpointed(state: &AppState, event_id: &str, tree: &TreeId, leaf: Option<(u64, u64)>) -> ApiError {
    let place = match leaf {
        Some((leaf_index, size)) => format!("is leaf {leaf_index}, past the latest checkpoint (size {size})"),
        None => "is in a tree that has no checkpoint yet".to_owned(),
    };
    ApiError::new(
        "EventNotYetCheckpointedException",
        format!(
            "Event {event_id} {place} of account {} in {}. Retry after the next checkpoint (every {} s), or sign one \
             now with POST /v1/integrity/checkpoint.",
            tree.account_id,
            tree.region,
            state.config.checkpoint_interval.as_secs()
        ),
        StatusCode::CONFLICT,
    )
}
