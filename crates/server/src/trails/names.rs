//! Trail names and ARNs: CloudTrail's naming rules, and how a `Name`/`TrailName`
//! parameter (a name or a trail ARN) is read.

use crate::api::ApiError;

/// `arn:aws:cloudtrail:<region>:<account>:trail/<name>`.
pub fn trail_arn(region: &str, account_id: &str, name: &str) -> String {
    format!("arn:aws:cloudtrail:{region}:{account_id}:trail/{name}")
}

/// How a request names a trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrailRef {
    Name(String),
    Arn { region: String, account_id: String, name: String },
}

impl TrailRef {
    /// Reads a `Name` parameter: an ARN when it starts with `arn:`, otherwise a trail name,
    /// which must follow the naming rules.
    pub fn parse(text: &str) -> Result<TrailRef, ApiError> {
        if text.starts_with("arn:") {
            return parse_arn(text);
        }
        check_name(text)?;
        Ok(TrailRef::Name(text.to_owned()))
    }

    pub fn name(&self) -> &str {
        match self {
            TrailRef::Name(name) | TrailRef::Arn { name, .. } => name,
        }
    }
}

fn parse_arn(text: &str) -> Result<TrailRef, ApiError> {
    let invalid = || {
        ApiError::client(
            "CloudTrailARNInvalidException",
            format!(
                "Invalid trail ARN: {text}. A trail ARN looks like arn:aws:cloudtrail:us-east-1:123456789012:trail/name."
            ),
        )
    };
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [_, partition, service, region, account_id, resource] = parts.as_slice() else {
        return Err(invalid());
    };
    if !partition.starts_with("aws") || *service != "cloudtrail" || region.is_empty() {
        return Err(invalid());
    }
    if !crate::config::is_account_id(account_id) {
        return Err(invalid());
    }
    let Some(name) = resource.strip_prefix("trail/") else {
        return Err(invalid());
    };
    check_name(name).map_err(|_| invalid())?;
    Ok(TrailRef::Arn { region: (*region).to_owned(), account_id: (*account_id).to_owned(), name: name.to_owned() })
}

/// CloudTrail's trail name rules: 3 to 128 ASCII letters, digits, `.`, `_` and `-`;
/// beginning and ending with a letter or digit; no two of `.`, `_`, `-` side by side; not
/// shaped like an IP address.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let invalid = |message: String| ApiError::client("InvalidTrailNameException", message);
    if name.is_empty() {
        return Err(invalid("Trail name cannot be blank!".to_owned()));
    }
    // The checks run in CloudTrail's order, so that a name breaking several rules gets
    // the same message as from AWS.
    let length = name.chars().count();
    if length < 3 {
        return Err(invalid(format!(
            "Trail name too short. Minimum allowed length: 3 characters. Specified name length: {length} characters."
        )));
    }
    if length > 128 {
        return Err(invalid(format!(
            "Trail name too long. Maximum allowed length: 128 characters. Specified name length: {length} characters."
        )));
    }
    let bytes = name.as_bytes();
    if !bytes[0].is_ascii_alphanumeric() {
        return Err(invalid("Trail name must starts with a letter or number.".to_owned()));
    }
    if !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Err(invalid("Trail name must ends with a letter or number.".to_owned()));
    }
    if !bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b)) {
        return Err(invalid(
            "Trail name or ARN can only contain uppercase letters, lowercase letters, numbers, periods (.), hyphens (-), and underscores (_)."
                .to_owned(),
        ));
    }
    if bytes.windows(2).any(|pair| !pair[0].is_ascii_alphanumeric() && !pair[1].is_ascii_alphanumeric()) {
        return Err(invalid(
            "Trail name or ARN cannot have adjacent periods (.), hyphens (-), or underscores (_).".to_owned(),
        ));
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(invalid("Trail names must not be formatted as an IP address.".to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for name in ["org-trail", "abc", "My.Trail_2", &"a".repeat(128)] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn refuses_invalid_names_with_the_rule_broken() {
        for (name, words) in [
            ("ab", "too short"),
            (&"a".repeat(129) as &str, "too long"),
            ("", "blank"),
            ("-abc", "starts with"),
            ("abc_", "ends with"),
            ("my--trail", "adjacent"),
            ("my-_trail", "adjacent"),
            ("my trail", "can only contain"),
            ("tráil", "can only contain"),
            ("10.0.0.1", "IP address"),
        ] {
            let error = check_name(name).unwrap_err();
            assert_eq!(error.code, "InvalidTrailNameException");
            assert!(error.message.contains(words), "{name}: {}", error.message);
        }
    }

    #[test]
    fn reads_names_and_arns() {
        assert_eq!(TrailRef::parse("org-trail").unwrap(), TrailRef::Name("org-trail".into()));
        assert_eq!(
            TrailRef::parse("arn:aws:cloudtrail:us-east-1:123456789012:trail/org-trail").unwrap(),
            TrailRef::Arn { region: "us-east-1".into(), account_id: "123456789012".into(), name: "org-trail".into() }
        );
        for bad in [
            "arn:aws:cloudtrail:us-east-1:123456789012:trail/",
            "arn:aws:s3:us-east-1:123456789012:trail/x1y",
            "arn:aws:cloudtrail:us-east-1:1234:trail/abc",
            "arn:aws:cloudtrail:us-east-1:123456789012:eventdatastore/abc",
            "arn:aws",
        ] {
            assert_eq!(TrailRef::parse(bad).unwrap_err().code, "CloudTrailARNInvalidException", "{bad}");
        }
        assert_eq!(trail_arn("eu-west-1", "123456789012", "t1"), "arn:aws:cloudtrail:eu-west-1:123456789012:trail/t1");
    }
}
