//! `EventView`: the few fields of a stored record that selectors look at, borrowed from the
//! record's JSON text. It runs once per event and is then asked by every trail, so it reads
//! only these fields and skips everything else without building it.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::lookup::Category;

/// The fields of one record that selectors look at, borrowed from its JSON text.
///
/// String fields that are absent, or not strings, read as `None`: real records carry the odd
/// number or object where a string belongs, and a selector condition on such a field behaves
/// as it does for a missing field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView<'a> {
    category: Category,
    /// The record's own `eventCategory`, kept to match categories newer than `Category`.
    event_category: Option<Cow<'a, str>>,
    read_only: Option<bool>,
    event_source: Option<Cow<'a, str>>,
    event_name: Option<Cow<'a, str>>,
    event_type: Option<Cow<'a, str>>,
    error_code: Option<Cow<'a, str>>,
    vpc_endpoint_id: Option<Cow<'a, str>>,
    aws_region: Option<Cow<'a, str>>,
    user_identity_arn: Option<Cow<'a, str>>,
    session_credential_from_console: bool,
    /// `tlsDetails.clientProvidedHostHeader`: tells STS's global endpoint from its Regional ones.
    tls_host: Option<Cow<'a, str>>,
    resources: Vec<EventResource<'a>>,
}

/// One entry of a record's `resources` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventResource<'a> {
    /// `type`, e.g. `AWS::S3::Object`.
    pub resource_type: Option<Cow<'a, str>>,
    /// `ARN`, or when the record has none, `ARNPrefix`. S3 writes `ARNPrefix` (the bucket ARN
    /// and a slash, plus any listing prefix) on the `AWS::S3::Object` entry of bucket-level
    /// data events such as `ListObjects`; matching it as the resource's ARN is what makes
    /// AWS's documented selector `StartsWith arn:aws:s3:::bucket/` capture those events.
    pub arn: Option<Cow<'a, str>>,
}

impl<'a> EventView<'a> {
    /// Reads the selector fields of one record. Fails only when the text is not a JSON
    /// object; fields of unexpected types read as absent.
    pub fn parse(json: &'a [u8]) -> Result<EventView<'a>, String> {
        // serde would also read a struct from a JSON array; a record is an object.
        if json.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err("a CloudTrail record must be a JSON object".to_owned());
        }
        // Checking UTF-8 once up front lets serde_json skip its per-string checks, which makes
        // the whole parse about a sixth faster on real records.
        let text = std::str::from_utf8(json).map_err(|err| format!("a CloudTrail record must be UTF-8: {err}"))?;
        let view: RecordView<'a> = serde_json::from_str(text).map_err(|err| err.to_string())?;
        let event_category = view.event_category.and_then(Lenient::into_str);
        let event_type = view.event_type.and_then(Lenient::into_str);
        // The same classification Event History uses, so a trail and LookupEvents never
        // disagree about what a management event is.
        let category = Category::of_record(event_category.as_deref(), view.management_event, event_type.as_deref());
        let identity = view.user_identity.and_then(|object| object.0);
        let tls = view.tls_details.and_then(|object| object.0);
        Ok(EventView {
            category,
            event_category,
            read_only: view.read_only.and_then(|flag| flag.0),
            event_source: view.event_source.and_then(Lenient::into_str),
            event_name: view.event_name.and_then(Lenient::into_str),
            event_type,
            error_code: view.error_code.and_then(Lenient::into_str),
            vpc_endpoint_id: view.vpc_endpoint_id.and_then(Lenient::into_str),
            aws_region: view.aws_region.and_then(Lenient::into_str),
            user_identity_arn: identity.and_then(|identity| identity.arn).and_then(Lenient::into_str),
            session_credential_from_console: view
                .session_credential_from_console
                .and_then(|flag| flag.0)
                .unwrap_or(false),
            tls_host: tls.and_then(|tls| tls.client_provided_host_header).and_then(Lenient::into_str),
            resources: view
                .resources
                .map(|list| {
                    list.0
                        .into_iter()
                        .map(|resource| EventResource {
                            resource_type: resource.resource_type.and_then(Lenient::into_str),
                            arn: resource
                                .arn
                                .and_then(Lenient::into_str)
                                .or_else(|| resource.arn_prefix.and_then(Lenient::into_str)),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    pub fn category(&self) -> Category {
        self.category
    }

    /// `eventCategory` as advanced selectors compare it: the record's own value when it has
    /// one, else the name of the derived category.
    pub fn event_category(&self) -> &str {
        match (&self.event_category, self.category) {
            (Some(text), _) => text,
            (None, Category::Management) => "Management",
            (None, Category::Data) => "Data",
            (None, Category::Insight) => "Insight",
            (None, Category::NetworkActivity) => "NetworkActivity",
            (None, Category::Other) => "",
        }
    }

    /// `readOnly` as the record states it (`true`/`false` or the strings "true"/"false").
    pub fn read_only(&self) -> Option<bool> {
        self.read_only
    }

    /// Whether selectors treat the event as a write. CloudTrail defines write events as those
    /// that modify, or might modify, resources; a record that does not say it is read-only
    /// (no `readOnly` field: some service events and pre-1.01 records) is therefore treated
    /// as a write, by `ReadWriteType` and by the advanced `readOnly` field alike.
    pub fn is_write(&self) -> bool {
        self.read_only != Some(true)
    }

    pub fn event_source(&self) -> Option<&str> {
        self.event_source.as_deref()
    }

    pub fn event_name(&self) -> Option<&str> {
        self.event_name.as_deref()
    }

    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    pub fn error_code(&self) -> Option<&str> {
        self.error_code.as_deref()
    }

    pub fn vpc_endpoint_id(&self) -> Option<&str> {
        self.vpc_endpoint_id.as_deref()
    }

    pub fn aws_region(&self) -> Option<&str> {
        self.aws_region.as_deref()
    }

    pub fn user_identity_arn(&self) -> Option<&str> {
        self.user_identity_arn.as_deref()
    }

    /// The record's top-level `sessionCredentialFromConsole`, which CloudTrail writes only
    /// when it is "true"; absent reads as false.
    pub fn session_credential_from_console(&self) -> bool {
        self.session_credential_from_console
    }

    pub fn resources(&self) -> &[EventResource<'a>] {
        &self.resources
    }

    /// The ARNs of the record's resources of one type.
    pub(crate) fn arns_of_type<'s>(&'s self, resource_type: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.resources
            .iter()
            .filter(move |resource| resource.resource_type.as_deref() == Some(resource_type))
            .filter_map(|resource| resource.arn.as_deref())
    }
}

/// CloudTrail's global services (IAM, STS global endpoint, CloudFront, Route 53, ...): a trail
/// with IncludeGlobalServiceEvents=false does not deliver their events.
///
/// The CloudTrail user guide ("Global service events") names IAM, AWS STS and Amazon
/// CloudFront, whose events are recorded in us-east-1 and delivered to any trail that
/// includes global services; Route 53's hosted-zone API is global in the same way. STS also
/// has Regional endpoints whose events belong to their Region like any other service's, so
/// an STS event counts as global only when it came through `sts.amazonaws.com`: the host the
/// client named in `tlsDetails`, or, for records written before `tlsDetails` existed, the
/// us-east-1 Region that the global endpoint records.
pub fn is_global_service_event(event: &EventView<'_>) -> bool {
    match event.event_source() {
        Some("iam.amazonaws.com" | "cloudfront.amazonaws.com" | "route53.amazonaws.com") => true,
        Some("sts.amazonaws.com") => match event.tls_host.as_deref() {
            Some(host) => host == "sts.amazonaws.com",
            None => event.aws_region() == Some("us-east-1"),
        },
        _ => false,
    }
}

/// The fields `EventView` reads; serde skips all others without building them.
#[derive(Deserialize)]
struct RecordView<'a> {
    #[serde(rename = "eventCategory", borrow, default)]
    event_category: Option<Lenient<'a>>,
    #[serde(rename = "eventType", borrow, default)]
    event_type: Option<Lenient<'a>>,
    #[serde(rename = "managementEvent", default, deserialize_with = "lenient_bool")]
    management_event: Option<bool>,
    #[serde(rename = "readOnly", default)]
    read_only: Option<LenientBool>,
    #[serde(rename = "eventSource", borrow, default)]
    event_source: Option<Lenient<'a>>,
    #[serde(rename = "eventName", borrow, default)]
    event_name: Option<Lenient<'a>>,
    #[serde(rename = "errorCode", borrow, default)]
    error_code: Option<Lenient<'a>>,
    #[serde(rename = "vpcEndpointId", borrow, default)]
    vpc_endpoint_id: Option<Lenient<'a>>,
    #[serde(rename = "awsRegion", borrow, default)]
    aws_region: Option<Lenient<'a>>,
    #[serde(rename = "sessionCredentialFromConsole", default)]
    session_credential_from_console: Option<LenientBool>,
    #[serde(rename = "userIdentity", borrow, default)]
    user_identity: Option<LenientObject<IdentityView<'a>>>,
    #[serde(rename = "tlsDetails", borrow, default)]
    tls_details: Option<LenientObject<TlsView<'a>>>,
    #[serde(borrow, default)]
    resources: Option<ResourceList<'a>>,
}

#[derive(Deserialize)]
struct IdentityView<'a> {
    #[serde(borrow, default)]
    arn: Option<Lenient<'a>>,
}

#[derive(Deserialize)]
struct TlsView<'a> {
    #[serde(rename = "clientProvidedHostHeader", borrow, default)]
    client_provided_host_header: Option<Lenient<'a>>,
}

#[derive(Deserialize)]
struct ResourceView<'a> {
    #[serde(rename = "type", borrow, default)]
    resource_type: Option<Lenient<'a>>,
    #[serde(rename = "ARN", borrow, default)]
    arn: Option<Lenient<'a>>,
    #[serde(rename = "ARNPrefix", borrow, default)]
    arn_prefix: Option<Lenient<'a>>,
}

/// An object read as `T`, or `None` when the value is not an object. Streams the object
/// straight into `T` (no intermediate buffer, unlike `#[serde(untagged)]`).
struct LenientObject<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for LenientObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ObjectOrNothing(PhantomData)).map(LenientObject)
    }
}

struct ObjectOrNothing<T>(PhantomData<T>);

/// Visitor methods that accept a scalar and return `$empty`.
macro_rules! ignore_scalars {
    ($empty:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($empty)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($empty)
        }
    };
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOrNothing<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    ignore_scalars!(None);
}

/// `resources`: a list whose object elements are kept; a non-list, or a non-object element,
/// is skipped rather than failing the record.
struct ResourceList<'a>(Vec<ResourceView<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for ResourceList<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ListVisitor<'a> {
            type Value = ResourceList<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(2).min(16));
                while let Some(item) = seq.next_element::<LenientObject<ResourceView<'a>>>()? {
                    items.extend(item.0);
                }
                Ok(ResourceList(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ResourceList(Vec::new()))
            }
            ignore_scalars!(ResourceList(Vec::new()));
        }
        deserializer.deserialize_any(ListVisitor(PhantomData))
    }
}

/// Any JSON value, keeping it only when it is a string. Real records carry the odd
/// number or object where a string belongs; such a field reads as absent, not as an error.
#[derive(Clone)]
enum Lenient<'a> {
    Str(Cow<'a, str>),
    Other,
}

impl<'a> Lenient<'a> {
    fn into_str(self) -> Option<Cow<'a, str>> {
        match self {
            Lenient::Str(text) => Some(text),
            Lenient::Other => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Lenient<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LenientVisitor;
        impl<'de> Visitor<'de> for LenientVisitor {
            type Value = Lenient<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Lenient::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Lenient::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Lenient::Str(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Lenient::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Lenient::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient::Other)
            }
        }
        deserializer.deserialize_any(LenientVisitor)
    }
}

/// `readOnly` as a boolean, or the strings "true"/"false" some pipelines write.
struct LenientBool(Option<bool>);

impl<'de> Deserialize<'de> for LenientBool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Lenient::deserialize_bool_or_str(deserializer)?;
        Ok(LenientBool(value))
    }
}

fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    Lenient::deserialize_bool_or_str(deserializer)
}

impl Lenient<'_> {
    fn deserialize_bool_or_str<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum BoolOrOther<'a> {
            Bool(bool),
            #[serde(borrow)]
            Other(Lenient<'a>),
        }
        Ok(match BoolOrOther::deserialize(deserializer)? {
            BoolOrOther::Bool(flag) => Some(flag),
            BoolOrOther::Other(Lenient::Str(text)) if text.eq_ignore_ascii_case("true") => Some(true),
            BoolOrOther::Other(Lenient::Str(text)) if text.eq_ignore_ascii_case("false") => Some(false),
            BoolOrOther::Other(_) => None,
        })
    }
}
