//! Figures as people read them in reports, verdicts and progress lines. Its own module
//! so that the timeline, assert and report stages share it without importing each other.

/// Milliseconds as a short human duration: 950ms, 12.3s, 2m 05s.
pub fn ms(millis: u64) -> String {
    if millis < 1_000 {
        format!("{millis}ms")
    } else if millis < 60_000 {
        format!("{:.1}s", millis as f64 / 1000.0)
    } else {
        format!("{}m {:02}s", millis / 60_000, (millis % 60_000) / 1000)
    }
}

/// The first 12 characters of a commit, as Git abbreviates it.
pub fn short_commit(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_short() {
        assert_eq!(ms(950), "950ms");
        assert_eq!(ms(12_345), "12.3s");
        assert_eq!(ms(125_000), "2m 05s");
    }

    #[test]
    fn commits_are_cut_to_twelve_characters() {
        assert_eq!(short_commit(&"c1".repeat(20)), "c1c1c1c1c1c1");
        assert_eq!(short_commit("abc"), "abc");
    }
}
