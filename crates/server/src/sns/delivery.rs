//! HTTP(S) delivery of SNS messages to subscribers: the JSON documents SNS posts
//! (`SubscriptionConfirmation`, `Notification`), the `x-amz-sns-*` headers, and a few
//! retries with exponential back-off, each delivery in its own background task.
//!
//! A delivery never blocks the call that caused it and never fails it: an endpoint that
//! stays down loses the message after the last retry, with a warning in the log.
//!
//! Messages are not signed. AWS signs each message with an X.509 certificate and adds
//! `SignatureVersion`, `Signature` and `SigningCertURL`; Trailkeeper has no such certificate,
//! so those fields are left out rather than filled with values that would not verify.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use serde::Serialize;
use trailkeeper_core::time::format_event_time;

/// Waits before the retries of one delivery: three retries, exponential from 1 s to 16 s.
/// `EffectiveDeliveryPolicy` reports exactly this.
pub const RETRY_DELAYS: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(4), Duration::from_secs(16)];
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const AGENT: &str = concat!("Trailkeeper-SNS-Agent/", env!("CARGO_PKG_VERSION"));

/// The `EffectiveDeliveryPolicy` topic attribute: the retry policy [`RETRY_DELAYS`] applies.
pub fn effective_delivery_policy() -> String {
    serde_json::json!({
        "http": {
            "defaultHealthyRetryPolicy": {
                "minDelayTarget": RETRY_DELAYS[0].as_secs(),
                "maxDelayTarget": RETRY_DELAYS[RETRY_DELAYS.len() - 1].as_secs(),
                "numRetries": RETRY_DELAYS.len(),
                "numMaxDelayRetries": 0,
                "numNoDelayRetries": 0,
                "numMinDelayRetries": 0,
                "backoffFunction": "exponential"
            },
            "disableSubscriptionOverrides": false,
            "defaultRequestPolicy": { "headerContentType": "text/plain; charset=UTF-8" }
        }
    })
    .to_string()
}

/// `x-amz-sns-message-type` and the body's `Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    SubscriptionConfirmation,
    Notification,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::SubscriptionConfirmation => "SubscriptionConfirmation",
            MessageType::Notification => "Notification",
        }
    }
}

/// One message for one endpoint, ready to post.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub endpoint: String,
    pub message_type: MessageType,
    pub message_id: String,
    pub topic_arn: String,
    /// Sent as `x-amz-sns-subscription-arn` with notifications (a pending subscription has
    /// no ARN yet).
    pub subscription_arn: Option<String>,
    pub body: String,
}

/// The body of a `SubscriptionConfirmation`, members in AWS's order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ConfirmationBody<'a> {
    #[serde(rename = "Type")]
    message_type: &'static str,
    message_id: &'a str,
    token: &'a str,
    topic_arn: &'a str,
    message: &'a str,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: &'a str,
    timestamp: &'a str,
}

/// The body of a `Notification`, members in AWS's order. `Subject` is present only when the
/// publisher gave one.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NotificationBody<'a> {
    #[serde(rename = "Type")]
    message_type: &'static str,
    message_id: &'a str,
    topic_arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    message: &'a str,
    timestamp: &'a str,
    #[serde(rename = "UnsubscribeURL")]
    unsubscribe_url: &'a str,
}

/// SNS's `Timestamp`: ISO 8601 in UTC with milliseconds.
pub fn timestamp(now_ms: i64) -> String {
    let seconds = format_event_time(now_ms);
    let whole = seconds.strip_suffix('Z').unwrap_or(&seconds);
    format!("{whole}.{:03}Z", now_ms.rem_euclid(1000))
}

/// The text AWS sends in a subscription confirmation.
pub fn confirmation_text(topic_arn: &str) -> String {
    format!(
        "You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message."
    )
}

pub fn confirmation_body(message_id: &str, token: &str, topic_arn: &str, subscribe_url: &str, now_ms: i64) -> String {
    let message = confirmation_text(topic_arn);
    let body = ConfirmationBody {
        message_type: MessageType::SubscriptionConfirmation.as_str(),
        message_id,
        token,
        topic_arn,
        message: &message,
        subscribe_url,
        timestamp: &timestamp(now_ms),
    };
    // Serializing a struct of strings cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}

pub fn notification_body(
    message_id: &str,
    topic_arn: &str,
    subject: Option<&str>,
    message: &str,
    unsubscribe_url: &str,
    now_ms: i64,
) -> String {
    let body = NotificationBody {
        message_type: MessageType::Notification.as_str(),
        message_id,
        topic_arn,
        subject,
        message,
        timestamp: &timestamp(now_ms),
        unsubscribe_url,
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// The HTTP client shared by every delivery, and the retry schedule.
#[derive(Clone)]
pub struct Delivery {
    client: reqwest::Client,
    retry_delays: Arc<[Duration]>,
}

impl Delivery {
    /// A client that trusts the system's root certificates. The rustls crypto provider is
    /// chosen here rather than installed process-wide, as the TLS server does.
    pub fn new(retry_delays: &[Duration]) -> Result<Delivery, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::debug!(%error, "a system root certificate could not be loaded");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "root certificates for HTTPS subscribers");
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // A subscriber confirmed one URL; a redirect would send its messages elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| error.to_string())?;
        Ok(Delivery { client, retry_delays: retry_delays.into() })
    }

    /// Posts the message in a background task on `runtime` and returns at once.
    pub fn spawn(&self, runtime: &tokio::runtime::Handle, outgoing: Outgoing) {
        let delivery = self.clone();
        runtime.spawn(async move { delivery.deliver(outgoing).await });
    }

    /// Posts until the endpoint answers 2xx, a final 4xx comes back, or the retries run out.
    /// Returns whether the endpoint accepted the message.
    pub async fn deliver(&self, outgoing: Outgoing) -> bool {
        let headers = headers(&outgoing);
        let mut attempt = 0;
        loop {
            let result =
                self.client.post(&outgoing.endpoint).headers(headers.clone()).body(outgoing.body.clone()).send().await;
            let retryable = match result {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(endpoint = %outgoing.endpoint, message_id = %outgoing.message_id, kind = outgoing.message_type.as_str(), "delivered");
                    return true;
                }
                Ok(response) => {
                    let status = response.status();
                    tracing::debug!(endpoint = %outgoing.endpoint, %status, "subscriber refused a message");
                    // SNS retries server errors and throttling; any other 4xx is the
                    // endpoint's final answer.
                    status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408
                }
                Err(error) => {
                    tracing::debug!(endpoint = %outgoing.endpoint, %error, "subscriber unreachable");
                    true
                }
            };
            let Some(delay) = self.retry_delays.get(attempt).copied().filter(|_| retryable) else {
                tracing::warn!(
                    endpoint = %outgoing.endpoint,
                    message_id = %outgoing.message_id,
                    topic = %outgoing.topic_arn,
                    attempts = attempt + 1,
                    "message not delivered; giving up"
                );
                return false;
            };
            attempt += 1;
            tokio::time::sleep(delay).await;
        }
    }
}

fn headers(outgoing: &Outgoing) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=UTF-8"));
    headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
    headers.insert(
        HeaderName::from_static("x-amz-sns-message-type"),
        HeaderValue::from_static(outgoing.message_type.as_str()),
    );
    let mut put = |name: &'static str, value: &str| {
        // ARNs and UUIDs are visible ASCII; a value that is not is left out, not sent mangled.
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("x-amz-sns-message-id", &outgoing.message_id);
    put("x-amz-sns-topic-arn", &outgoing.topic_arn);
    if let Some(arn) = &outgoing.subscription_arn {
        put("x-amz-sns-subscription-arn", arn);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn timestamps_have_milliseconds() {
        assert_eq!(timestamp(1_700_000_000_007), "2023-11-14T22:13:20.007Z");
    }

    #[test]
    fn bodies_follow_the_aws_shapes() {
        let confirmation: serde_json::Value = serde_json::from_str(&confirmation_body(
            "m-1",
            "tok",
            "arn:aws:sns:us-east-1:123456789012:t",
            "http://x/?Action=ConfirmSubscription",
            0,
        ))
        .unwrap();
        assert_eq!(confirmation["Type"], "SubscriptionConfirmation");
        assert_eq!(confirmation["Token"], "tok");
        assert_eq!(confirmation["SubscribeURL"], "http://x/?Action=ConfirmSubscription");
        assert!(confirmation["Message"].as_str().unwrap().contains("\nTo confirm the subscription"));
        assert!(confirmation.get("Signature").is_none(), "unsigned messages carry no signature fields");

        let text = notification_body("m-2", "arn:aws:sns:us-east-1:123456789012:t", None, "hi", "http://u", 0);
        let notification: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(notification["Type"], "Notification");
        assert_eq!(notification["Message"], "hi");
        assert!(notification.get("Subject").is_none());
        assert!(text.find("\"MessageId\"").unwrap() < text.find("\"TopicArn\"").unwrap(), "AWS's member order");
    }

    /// A one-shot HTTP server answering each request with the next status of `statuses`.
    async fn scripted_server(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            for status in statuses {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Read the head and the body (Content-Length) of one request.
                loop {
                    let read = stream.read(&mut buffer).await.unwrap();
                    request.extend_from_slice(&buffer[..read]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|line| {
                                line.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned)
                            })
                            .map_or(0, |value| value.trim().parse::<usize>().unwrap());
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                    if read == 0 {
                        break;
                    }
                }
                log.lock().unwrap().push(String::from_utf8_lossy(&request).to_string());
                let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                stream.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (format!("http://{address}/hook"), seen)
    }

    fn outgoing(endpoint: String) -> Outgoing {
        Outgoing {
            endpoint,
            message_type: MessageType::Notification,
            message_id: "m-1".to_owned(),
            topic_arn: "arn:aws:sns:us-east-1:123456789012:t".to_owned(),
            subscription_arn: Some("arn:aws:sns:us-east-1:123456789012:t:abc".to_owned()),
            body: "{\"Message\":\"hi\"}".to_owned(),
        }
    }

    #[tokio::test]
    async fn retries_server_errors_then_delivers() {
        let (endpoint, seen) = scripted_server(vec![500, 503, 200]).await;
        let delivery = Delivery::new(&[Duration::from_millis(10); 3]).unwrap();
        assert!(delivery.deliver(outgoing(endpoint)).await);
        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests.len(), 3);
        let first = requests[0].to_ascii_lowercase();
        assert!(first.starts_with("post /hook "));
        assert!(first.contains("x-amz-sns-message-type: notification"));
        assert!(first.contains("x-amz-sns-subscription-arn: arn:aws:sns:us-east-1:123456789012:t:abc"));
        assert!(requests[0].ends_with("{\"Message\":\"hi\"}"));
    }

    #[tokio::test]
    async fn a_client_error_is_final() {
        let (endpoint, seen) = scripted_server(vec![404, 200]).await;
        let delivery = Delivery::new(&[Duration::from_millis(10); 3]).unwrap();
        assert!(!delivery.deliver(outgoing(endpoint)).await);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn gives_up_after_the_last_retry() {
        let (endpoint, seen) = scripted_server(vec![500, 500, 500]).await;
        let delivery = Delivery::new(&[Duration::from_millis(5); 2]).unwrap();
        assert!(!delivery.deliver(outgoing(endpoint)).await);
        assert_eq!(seen.lock().unwrap().len(), 3, "one attempt and two retries");
    }
}
