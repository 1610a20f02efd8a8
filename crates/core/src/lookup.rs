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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resource {
    /// `type`, e.g. `AWS::S3::Bucket`.
    pub resource_type: Option<String>,
    /// `ARN`.
    pub resource_name: Option<String>,
}

/// The fields of a record that `LookupEvents` matches on and reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LookupFields {
    pub event_name: String,
    pub event_source: String,
    pub read_only: Option<bool>,
    pub username: Option<String>,
    pub access_key_id: Option<String>,
    pub resources: Vec<Resource>,
}

impl LookupFields {
    /// Every (key, value) pair under which the event can be found, the event's ID
    /// included. A record with several resources is found under each of them.
    pub fn lookup_values<'a>(&'a self, event_id: &'a str) -> Vec<(LookupKey, &'a str)> {
        let mut values = Vec::with_capacity(6 + 2 * self.resources.len());
        values.push((LookupKey::EventId, event_id));
        values.push((LookupKey::EventName, self.event_name.as_str()));
        values.push((LookupKey::EventSource, self.event_source.as_str()));
        if let Some(read_only) = self.read_only {
            values.push((LookupKey::ReadOnly, if read_only { "true" } else { "false" }));
        }
        if let Some(username) = &self.username {
            values.push((LookupKey::Username, username.as_str()));
        }
        if let Some(key) = &self.access_key_id {
            values.push((LookupKey::AccessKeyId, key.as_str()));
        }
        for resource in &self.resources {
            if let Some(resource_type) = &resource.resource_type {
                values.push((LookupKey::ResourceType, resource_type.as_str()));
            }
            if let Some(name) = &resource.resource_name {
                values.push((LookupKey::ResourceName, name.as_str()));
            }
        }
        values.sort_unstable();
        values.dedup();
        values
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
    fn lookup_values_cover_every_resource_once() {
        let fields = LookupFields {
            event_name: "PutObject".into(),
            event_source: "s3.amazonaws.com".into(),
            read_only: Some(false),
            username: Some("alice".into()),
            access_key_id: None,
            resources: vec![
                Resource { resource_type: Some("AWS::S3::Object".into()), resource_name: Some("arn:1".into()) },
                Resource { resource_type: Some("AWS::S3::Object".into()), resource_name: Some("arn:2".into()) },
            ],
        };
        let values = fields.lookup_values("id-1");
        assert_eq!(values.iter().filter(|(key, _)| *key == LookupKey::ResourceType).count(), 1);
        assert_eq!(values.iter().filter(|(key, _)| *key == LookupKey::ResourceName).count(), 2);
        assert!(values.contains(&(LookupKey::ReadOnly, "false")));
    }
}
