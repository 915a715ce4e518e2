//! Image pulls from kubelet Events (reasons Pulling, Pulled, Failed, BackOff). Pure parsing.

/// One image-pull fact read from a kubelet Event message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullFact {
    Pulling {
        image: String,
    },
    /// `kubelet_ms`: the pull time the kubelet measured itself; `size_bytes` when reported.
    Pulled {
        image: String,
        kubelet_ms: Option<u64>,
        size_bytes: Option<u64>,
    },
    Failed {
        image: Option<String>,
        reason: String,
        message: String,
    },
    /// "Container image ... already present on machine".
    Present {
        image: String,
    },
}

/// Reads an Event's reason and message. Returns None for events that are not pulls.
pub fn parse(reason: &str, message: &str) -> Option<PullFact> {
    match reason {
        "Pulling" => quoted(message).map(|image| PullFact::Pulling { image }),
        "Pulled" if message.contains("already present") => quoted(message).map(|image| PullFact::Present { image }),
        "Pulled" => {
            let image = quoted(message)?;
            let kubelet_ms = message
                .split(" in ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(go_duration_ms);
            let size_bytes = message
                .split("Image size: ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok());
            Some(PullFact::Pulled {
                image,
                kubelet_ms,
                size_bytes,
            })
        }
        // The kubelet follows each named failure with a bare "Error: ErrImagePull" (or
        // ImagePullBackOff) event that names no image: the named one already says it all.
        "Failed" | "BackOff" | "ErrImagePull" | "ImagePullBackOff"
            if message.to_ascii_lowercase().contains("image") && quoted(message).is_some() =>
        {
            Some(PullFact::Failed {
                image: quoted(message),
                reason: reason.into(),
                message: message.into(),
            })
        }
        _ => None,
    }
}

fn quoted(message: &str) -> Option<String> {
    let start = message.find('"')? + 1;
    let end = start + message[start..].find('"')?;
    Some(message[start..end].to_string())
}

/// Parses Go's time.Duration text (`1.52s`, `850ms`, `1m2.5s`, `312µs`) into milliseconds.
pub fn go_duration_ms(text: &str) -> Option<u64> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "µs" | "us" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    // Event text is not trusted: a figure beyond a day is no pull time.
    (total.is_finite() && total <= DAY_MS).then(|| total.round() as u64)
}

const DAY_MS: f64 = 86_400_000.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_beyond_a_day_or_not_finite_are_no_pull_time() {
        assert_eq!(go_duration_ms("1.5s"), Some(1_500));
        assert_eq!(go_duration_ms("25h"), None);
        assert_eq!(go_duration_ms("99999999999999999999999999999999h"), None);
    }

    #[test]
    fn kubelet_pull_messages_give_image_time_and_size() {
        assert_eq!(
            parse("Pulling", "Pulling image \"docker.io/gitops-drill/demo-large:1.0\""),
            Some(PullFact::Pulling {
                image: "docker.io/gitops-drill/demo-large:1.0".into()
            })
        );
        assert_eq!(
            parse(
                "Pulled",
                "Successfully pulled image \"docker.io/gitops-drill/demo-large:1.0\" in 8.412s (8.412s including waiting). Image size: 201326592 bytes."
            ),
            Some(PullFact::Pulled {
                image: "docker.io/gitops-drill/demo-large:1.0".into(),
                kubelet_ms: Some(8_412),
                size_bytes: Some(201_326_592)
            })
        );
        assert_eq!(
            parse("Pulled", "Container image \"busybox:1\" already present on machine"),
            Some(PullFact::Present {
                image: "busybox:1".into()
            })
        );
        assert!(
            matches!(parse("Failed", "Failed to pull image \"ghost:1\": not found"), Some(PullFact::Failed { image: Some(ref i), .. }) if i == "ghost:1"),
            "a named failure is a pull fact"
        );
        assert!(
            parse("Failed", "Error: ErrImagePull").is_none() && parse("Failed", "Error: ImagePullBackOff").is_none()
        );
        assert_eq!(parse("Scheduled", "Successfully assigned x"), None);
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(go_duration_ms("1.52s"), Some(1_520));
        assert_eq!(go_duration_ms("850ms"), Some(850));
        assert_eq!(go_duration_ms("1m2.5s"), Some(62_500));
        assert_eq!(go_duration_ms("312µs"), Some(0));
        assert_eq!(go_duration_ms("soon"), None);
        assert_eq!(go_duration_ms(""), None);
    }
}
