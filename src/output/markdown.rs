//! Reports as Markdown for pull-request comments: a summary table first, then a collapsible
//! section (`<details>`) per stage or release with its text in a fence. Secrets are masked as in
//! the text (the sections are the text reports, without colour). A size limit (GitHub refuses
//! comments over 65,536 characters) drops whole sections, the largest first and essential ones
//! last, and says what was dropped and the command that shows it.

use std::fmt::Write as _;

/// The default `--max-size`: under GitHub's 65,536-character comment limit.
pub const DEFAULT_MAX_SIZE: usize = 65_000;

pub struct Markdown {
    pub title: String,
    /// Markdown shown first (the summary table).
    pub summary: String,
    pub sections: Vec<Section>,
}

pub struct Section {
    pub title: String,
    /// Plain text (colour is stripped), shown in a fence.
    pub body: String,
    /// The fence's language: `diff` for diffs, `text` otherwise.
    pub language: &'static str,
    /// The command that shows the section in full.
    pub command: String,
    /// What a reviewer must see (a release whose stages differ outside envSpecific): dropped
    /// for size only after every other section.
    pub essential: bool,
}

/// Whether a report's text shows changes (its lines, colour stripped and indentation aside,
/// start with `+` or `-`, as a patch's and a manifest diff's do): a `diff` fence then.
pub fn is_diff(text: &str) -> bool {
    anstream::adapter::strip_str(text).to_string().lines().any(|line| {
        let line = line.trim_start();
        (line.starts_with('+') || line.starts_with('-')) && !line.starts_with("---") && !line.starts_with("--")
    })
}

impl Section {
    fn render(&self) -> String {
        let body = anstream::adapter::strip_str(&self.body).to_string();
        let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
        format!(
            "<details><summary>{}</summary>\n\n{fence}{}\n{}{}{fence}\n\n</details>\n\n",
            escape(&self.title),
            self.language,
            body,
            if body.ends_with('\n') { "" } else { "\n" }
        )
    }
}

impl Markdown {
    /// The report within `max_size` characters (at least the title, summary and the list of
    /// dropped sections are kept).
    pub fn render(&self, max_size: usize) -> String {
        let rendered: Vec<String> = self.sections.iter().map(Section::render).collect();
        let head = format!("### {}\n\n{}\n", escape(&self.title), self.summary.trim_end());
        let mut shown: Vec<bool> = vec![true; rendered.len()];
        loop {
            let out = self.assemble(&head, &rendered, &shown, max_size);
            if out.chars().count() <= max_size || !shown.iter().any(|s| *s) {
                return out;
            }
            // The largest section still shown, essential ones last; of equal ones, the last.
            let largest = (0..rendered.len())
                .filter(|&i| shown[i])
                .max_by_key(|&i| (!self.sections[i].essential, rendered[i].chars().count(), i))
                .unwrap_or_default();
            shown[largest] = false;
        }
    }

    fn assemble(&self, head: &str, rendered: &[String], shown: &[bool], max_size: usize) -> String {
        let mut out = format!("{head}\n\n");
        for (section, _) in rendered.iter().zip(shown).filter(|(_, s)| **s) {
            out.push_str(section);
        }
        let dropped: Vec<usize> = (0..rendered.len()).filter(|&i| !shown[i]).collect();
        if !dropped.is_empty() {
            let _ = writeln!(
                out,
                "**{} not shown** to keep this report under {max_size} characters:\n",
                if dropped.len() == 1 { "1 section".to_string() } else { format!("{} sections", dropped.len()) }
            );
            for i in dropped {
                let section = &self.sections[i];
                let _ = writeln!(
                    out,
                    "- {} ({} characters): `{}`",
                    escape(&section.title),
                    rendered[i].chars().count(),
                    section.command
                );
            }
        }
        out
    }
}

/// A Markdown table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n|{}\n", headers.join(" | "), " --- |".repeat(headers.len()));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| escape(c).replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// Text safe in Markdown and HTML: no tags, no stray emphasis.
fn escape(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(title: &str, size: usize) -> Section {
        Section {
            title: title.into(),
            body: "x".repeat(size),
            language: "diff",
            command: format!("show {title}"),
            essential: false,
        }
    }

    #[test]
    fn indented_and_coloured_changes_are_a_diff() {
        assert!(is_diff("  \u{1b}[32m+ image.tag: \"2.8.0\"\u{1b}[0m  envs/staging/web.yaml\n"));
        assert!(is_diff("web\n    -  replicas: 1\n    +  replicas: 2\n"));
        assert!(!is_diff("  passed  order    staging is the stage after dev\n---\n"));
        assert!(!is_diff("helm envs upgrade staging --dry-run\n"));
    }

    #[test]
    fn sections_are_collapsible_and_fenced_beyond_any_backticks_they_hold() {
        let report = Markdown {
            title: "diff <dev>".into(),
            summary: table(&["Release", "Plan"], &[vec!["web".into(), "1 to add | 0".into()]]),
            sections: vec![Section {
                title: "dev/web".into(),
                body: "\u{1b}[1m+ a\u{1b}[0m\n```\n".into(),
                language: "diff",
                command: "c".into(),
                essential: false,
            }],
        };
        let out = report.render(DEFAULT_MAX_SIZE);
        assert!(
            out.starts_with("### diff &lt;dev&gt;\n\n| Release | Plan |\n| --- | --- |\n| web | 1 to add \\| 0 |\n"),
            "{out}"
        );
        assert!(out.contains("<details><summary>dev/web</summary>\n\n````diff\n+ a\n```\n````\n\n</details>"), "{out}");
    }

    #[test]
    fn the_size_limit_drops_the_largest_sections_and_says_how_to_see_them() {
        let report = Markdown {
            title: "t".into(),
            summary: String::new(),
            sections: vec![section("a", 100), section("b", 3000), section("c", 200), section("d", 3000)],
        };
        let full = report.render(DEFAULT_MAX_SIZE);
        assert!(full.contains("summary>b<") && full.contains("summary>d<") && !full.contains("not shown"));
        let limited = report.render(3500);
        assert!(limited.chars().count() <= 3500, "{}", limited.len());
        // Of the two largest (equal), the last shown goes first; then the other.
        assert!(!limited.contains("summary>d<") && !limited.contains("summary>b<"), "{limited}");
        assert!(limited.contains("summary>a<") && limited.contains("summary>c<"));
        assert!(limited.contains("**2 sections not shown** to keep this report under 3500 characters"), "{limited}");
        assert!(limited.contains("- b (") && limited.contains("`show b`") && limited.contains("`show d`"));
        let only_d = report.render(full.chars().count() - 10);
        assert!(only_d.contains("summary>b<") && !only_d.contains("summary>d<"), "{only_d}");
    }

    #[test]
    fn essential_sections_are_dropped_after_all_others() {
        let report = Markdown {
            title: "t".into(),
            summary: String::new(),
            sections: vec![Section { essential: true, ..section("undocumented", 3000) }, section("documented", 1000)],
        };
        let limited = report.render(3500);
        assert!(limited.contains("summary>undocumented<") && !limited.contains("summary>documented<"), "{limited}");
        let tiny = report.render(100);
        assert!(tiny.contains("**2 sections not shown**"), "{tiny}");
    }
}
