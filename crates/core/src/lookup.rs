//! Event History's vocabulary: the lookup attributes of `LookupEvents`, the fields they
//! match, and the category that decides whether an event is in Event History at all.

use std::fmt;
use std::str::FromStr;

/// An `AttributeKey` of `LookupEvents`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LookupKey {
    EventId,
    EventName,
    ReadOnly,
    Username,
    ResourceType,
    ResourceName,
    EventSource,
    AccessKeyId,
}

impl LookupKey {
    pub const ALL: [LookupKey; 8] = [
        LookupKey::EventId,
        LookupKey::EventName,
        LookupKey::ReadOnly,
        LookupKey::Username,
        LookupKey::ResourceType,
        LookupKey::ResourceName,
        LookupKey::EventSource,
        LookupKey::AccessKeyId,
    ];

    /// The name on the wire, as in the botocore model's `LookupAttributeKey` enum.
    pub fn as_str(self) -> &'static str {
        match self {
            LookupKey::EventId => "EventId",
            LookupKey::EventName => "EventName",
            LookupKey::ReadOnly => "ReadOnly",
            LookupKey::Username => "Username",
            LookupKey::ResourceType => "ResourceType",
            LookupKey::ResourceName => "ResourceName",
            LookupKey::EventSource => "EventSource",
            LookupKey::AccessKeyId => "AccessKeyId",
        }
    }

    /// A stable one-byte tag for on-disk indexes and tokens.
    pub fn tag(self) -> u8 {
        self as u8
    }

    pub fn from_tag(tag: u8) -> Option<LookupKey> {
        LookupKey::ALL.get(usize::from(tag)).copied()
    }

    /// Whether the key applies to Insights events (only EventId, EventName, EventSource).
    pub fn applies_to_insights(self) -> bool {
        matches!(self, LookupKey::EventId | LookupKey::EventName | LookupKey::EventSource)
    }
}

impl fmt::Display for LookupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LookupKey {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        LookupKey::ALL.into_iter().find(|key| key.as_str() == text).ok_or(())
    }
}

/// What kind of event a record is, from `eventCategory` (or, in records older than
/// eventVersion 1.07, from `managementEvent` and `eventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Management,
    Data,
    Insight,
    NetworkActivity,
    /// Any other category a newer CloudTrail may write; kept, never in Event History.
    Other,
}

impl Category {
    pub fn of_record(
        event_category: Option<&str>,
        management_event: Option<bool>,
        event_type: Option<&str>,
    ) -> Category {
        match event_category {
            Some("Management") => Category::Management,
            Some("Data") => Category::Data,
            Some("Insight") => Category::Insight,
            Some("NetworkActivity") => Category::NetworkActivity,
            Some(_) => Category::Other,
            None if event_type == Some("AwsCloudTrailInsight") => Category::Insight,
            None if event_type == Some("AwsVpceEvent") => Category::NetworkActivity,
            None if management_event == Some(false) => Category::Data,
            // Before eventVersion 1.06 every record delivered was a management event.
            None => Category::Management,
        }
    }

    /// Event History answers for management events and, when asked, Insights events.
    pub fn in_event_history(self) -> bool {
        matches!(self, Category::Management | Category::Insight)
    }

    pub fn tag(self) -> u8 {
        self as u8
    }

    pub fn from_tag(tag: u8) -> Option<Category> {
        [Category::Management, Category::Data, Category::Insight, Category::NetworkActivity, Category::Other]
            .get(usize::from(tag))
            .copied()
    }
}

/// One entry of a record's `resources` list, as `LookupEvents` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resource<'a> {
    /// `type`, e.g. `AWS::S3::Bucket`.
    pub resource_type: Option<&'a str>,
    /// `ARN`.
    pub resource_name: Option<&'a str>,
}

/// The parts of [`LookupFields`], borrowed: what a parser found, or what a test wants.
#[derive(Debug, Clone, Copy, Default)]
pub struct FieldValues<'a> {
    pub event_id: &'a str,
    pub account_id: &'a str,
    pub region: &'a str,
    pub event_name: &'a str,
    pub event_source: &'a str,
    pub read_only: Option<bool>,
    pub username: Option<&'a str>,
    pub access_key_id: Option<&'a str>,
    pub resources: &'a [Resource<'a>],
}

/// The texts the log keeps a record by: its eventID, the account and Region whose history
/// holds it, and the fields `LookupEvents` matches on and reports.
///
/// Every text sits in one buffer: an event keeps these for as long as it is in the hot
/// table, and one allocation (two with resources) instead of one per text makes both
/// building and freeing a table of a few hundred thousand events cheaper.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct LookupFields {
    /// The eventID, account, Region, event name, event source, user name, access key ID,
    /// then each resource's type and name, back to back.
    text: Box<str>,
    event_id_end: u32,
    account_id_end: u32,
    region_end: u32,
    event_name_end: u32,
    event_source_end: u32,
    username: Option<Span>,
    access_key_id: Option<Span>,
    pub read_only: Option<bool>,
    /// Empty (and unallocated) for most events.
    resources: Box<[ResourceSpans]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResourceSpans {
    resource_type: Option<Span>,
    resource_name: Option<Span>,
}

impl From<FieldValues<'_>> for LookupFields {
    fn from(values: FieldValues<'_>) -> LookupFields {
        let optional_len = |value: Option<&str>| value.map_or(0, str::len);
        let len = values.event_id.len()
            + values.account_id.len()
            + values.region.len()
            + values.event_name.len()
            + values.event_source.len()
            + optional_len(values.username)
            + optional_len(values.access_key_id)
            + values
                .resources
                .iter()
                .map(|resource| optional_len(resource.resource_type) + optional_len(resource.resource_name))
                .sum::<usize>();
        let mut text = String::with_capacity(len);
        // A record is at most 256 KB, so every offset fits in 32 bits.
        let mut push = |value: &str| {
            let start = text.len() as u32;
            text.push_str(value);
            Span { start, end: text.len() as u32 }
        };
        let event_id_end = push(values.event_id).end;
        let account_id_end = push(values.account_id).end;
        let region_end = push(values.region).end;
        let event_name_end = push(values.event_name).end;
        let event_source_end = push(values.event_source).end;
        let username = values.username.map(&mut push);
        let access_key_id = values.access_key_id.map(&mut push);
        let resources = values
            .resources
            .iter()
            .map(|resource| ResourceSpans {
                resource_type: resource.resource_type.map(&mut push),
                resource_name: resource.resource_name.map(&mut push),
            })
            .collect();
        LookupFields {
            text: text.into_boxed_str(),
            event_id_end,
            account_id_end,
            region_end,
            event_name_end,
            event_source_end,
            username,
            access_key_id,
            read_only: values.read_only,
            resources,
        }
    }
}

impl LookupFields {
    fn text(&self, span: Span) -> &str {
        &self.text[span.start as usize..span.end as usize]
    }

    /// Asks for the texts to be brought into the cache ([`crate::prefetch`]).
    pub fn prefetch(&self) {
        crate::prefetch::prefetch(self.text.as_ptr());
    }

    pub fn event_id(&self) -> &str {
        &self.text[..self.event_id_end as usize]
    }

    pub fn account_id(&self) -> &str {
        &self.text[self.event_id_end as usize..self.account_id_end as usize]
    }

    pub fn region(&self) -> &str {
        &self.text[self.account_id_end as usize..self.region_end as usize]
    }

    pub fn event_name(&self) -> &str {
        &self.text[self.region_end as usize..self.event_name_end as usize]
    }

    pub fn event_source(&self) -> &str {
        &self.text[self.event_name_end as usize..self.event_source_end as usize]
    }

    pub fn username(&self) -> Option<&str> {
        self.username.map(|span| self.text(span))
    }

    pub fn access_key_id(&self) -> Option<&str> {
        self.access_key_id.map(|span| self.text(span))
    }

    pub fn resources(&self) -> impl ExactSizeIterator<Item = Resource<'_>> + '_ {
        self.resources.iter().map(|spans| Resource {
            resource_type: spans.resource_type.map(|span| self.text(span)),
            resource_name: spans.resource_name.map(|span| self.text(span)),
        })
    }

    /// The same fields under another eventID, account and Region.
    pub fn with_identity(&self, event_id: &str, account_id: &str, region: &str) -> LookupFields {
        let resources: Vec<Resource<'_>> = self.resources().collect();
        LookupFields::from(FieldValues {
            event_id,
            account_id,
            region,
            event_name: self.event_name(),
            event_source: self.event_source(),
            read_only: self.read_only,
            username: self.username(),
            access_key_id: self.access_key_id(),
            resources: &resources,
        })
    }

    /// Every (key, value) pair under which the event can be found besides its eventID, as
    /// written: a record with several resources is found under each of them, and gives a
    /// value as often as its resources repeat it. Lookups by eventID go through the
    /// eventID indexes instead.
    pub fn attribute_values(&self) -> impl Iterator<Item = (LookupKey, &str)> + '_ {
        let read_only = self.read_only.map(|read_only| if read_only { "true" } else { "false" });
        let values = [
            (LookupKey::EventName, Some(self.event_name())),
            (LookupKey::EventSource, Some(self.event_source())),
            (LookupKey::ReadOnly, read_only),
            (LookupKey::Username, self.username()),
            (LookupKey::AccessKeyId, self.access_key_id()),
        ];
        let resources = self.resources().flat_map(|resource| {
            [(LookupKey::ResourceType, resource.resource_type), (LookupKey::ResourceName, resource.resource_name)]
        });
        values.into_iter().chain(resources).filter_map(|(key, value)| Some((key, value?)))
    }
}

impl fmt::Debug for LookupFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LookupFields")
            .field("event_id", &self.event_id())
            .field("account_id", &self.account_id())
            .field("region", &self.region())
            .field("event_name", &self.event_name())
            .field("event_source", &self.event_source())
            .field("read_only", &self.read_only)
            .field("username", &self.username())
            .field("access_key_id", &self.access_key_id())
            .field("resources", &self.resources().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_names_and_tags() {
        for key in LookupKey::ALL {
            assert_eq!(key.as_str().parse(), Ok(key));
            assert_eq!(LookupKey::from_tag(key.tag()), Some(key));
        }
        assert_eq!("Eventid".parse::<LookupKey>(), Err(()));
    }

    #[test]
    fn attribute_values_cover_every_resource() {
        let resources = [
            Resource { resource_type: Some("AWS::S3::Object"), resource_name: Some("arn:1") },
            Resource { resource_type: Some("AWS::S3::Object"), resource_name: Some("arn:2") },
        ];
        let fields = LookupFields::from(FieldValues {
            event_id: "id-1",
            account_id: "111111111111",
            region: "eu-west-1",
            event_name: "PutObject",
            event_source: "s3.amazonaws.com",
            read_only: Some(false),
            username: Some("alice"),
            access_key_id: None,
            resources: &resources,
        });
        assert_eq!((fields.event_id(), fields.account_id(), fields.region()), ("id-1", "111111111111", "eu-west-1"));
        assert_eq!(fields.event_name(), "PutObject");
        assert_eq!(fields.event_source(), "s3.amazonaws.com");
        assert_eq!(fields.username(), Some("alice"));
        assert_eq!(fields.access_key_id(), None);
        assert_eq!(fields.resources().collect::<Vec<_>>(), resources);
        let moved = fields.with_identity("id-2", "222222222222", "us-west-2");
        assert_eq!((moved.event_id(), moved.account_id(), moved.region()), ("id-2", "222222222222", "us-west-2"));
        assert_eq!(moved.with_identity("id-1", "111111111111", "eu-west-1"), fields);
        let values: Vec<_> = fields.attribute_values().collect();
        assert_eq!(values.iter().filter(|(key, _)| *key == LookupKey::ResourceType).count(), 2);
        assert_eq!(values.iter().filter(|(key, _)| *key == LookupKey::ResourceName).count(), 2);
        assert!(values.contains(&(LookupKey::ReadOnly, "false")));
        assert!(values.contains(&(LookupKey::Username, "alice")));
        assert!(!values.iter().any(|(key, _)| matches!(key, LookupKey::EventId | LookupKey::AccessKeyId)));
    }
}
