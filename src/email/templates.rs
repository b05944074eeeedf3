//! Email templates: one folder per template with `subject.txt`, `body.txt` and `body.html`,
//! rendered with minijinja (HTML auto-escaped). The built-in templates are compiled in; a folder
//! named by `TANDEM_TEMPLATE_DIR` replaces any of them, file by file, without a rebuild.

use std::path::PathBuf;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

/// The built-in files, by the name templates use for them (`reward_earned/subject.txt`): every
/// file under `templates/`, embedded by `build.rs`.
const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// Renders a value: `none` as nothing, and in HTML strings escaped for `& < > " '` only, so that
/// links stay readable (minijinja's default also escapes `/`).
fn format_value(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    if value.is_none() {
        return Ok(());
    }
    match value.as_str() {
        Some(text) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            let escaped = text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&#x27;");
            out.write_str(&escaped).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
            })
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The template set: built-in files, each replaceable by a file in the override folder.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new(override_dir: Option<PathBuf>) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_formatter(format_value);
        env.set_loader(move |name: &str| {
            if name.contains("..") {
                return Ok(None);
            }
            if let Some(dir) = &override_dir {
                match std::fs::read_to_string(dir.join(name)) {
                    Ok(text) => return Ok(Some(text)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            format!("cannot read template {name}: {e}"),
                        ));
                    }
                }
            }
            Ok(BUILTIN
                .iter()
                .find(|(builtin, _)| *builtin == name)
                .map(|(_, text)| (*text).to_owned()))
        });
        Self { env }
    }

    /// Renders the three files of `template` with `context`.
    pub fn render(
        &self,
        template: &str,
        context: &impl Serialize,
    ) -> Result<Rendered, minijinja::Error> {
        let file = |part: &str| -> Result<String, minijinja::Error> {
            self.env
                .get_template(&format!("{template}/{part}"))?
                .render(context)
        };
        Ok(Rendered {
            // A subject is one line, whatever the template's whitespace.
            subject: file("subject.txt")?
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            text: file("body.txt")?,
            html: file("body.html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_escaped_in_html_and_kept_in_text() {
        let templates = Templates::new(None);
        let rendered = templates
            .render(
                "referral_invite",
                &json!({ "referrer_name": "<b>Ann</b>", "offer": "10% off", "referral_link": "https://x/r/A", "message": "Try it & see" }),
            )
            .unwrap();
        assert!(rendered.html.contains("&lt;b&gt;Ann&lt;/b&gt;"));
        assert!(rendered.html.contains("href=\"https://x/r/A\""));
        assert!(!rendered.html.contains("<b>Ann</b>"));
        assert!(rendered.text.contains("<b>Ann</b>"));
        assert_eq!(rendered.subject, "An invitation from <b>Ann</b>: 10% off");
    }

    #[test]
    fn every_template_folder_is_built_in_and_renders() {
        let folders: Vec<&str> = BUILTIN
            .iter()
            .filter_map(|(name, _)| name.strip_suffix("/subject.txt"))
            .collect();
        assert_eq!(folders.len(), 9, "{folders:?}");
        let templates = Templates::new(None);
        for name in folders {
            let rendered = templates.render(name, &json!({})).unwrap();
            assert!(!rendered.subject.is_empty(), "{name}");
            assert!(!rendered.text.trim().is_empty(), "{name}");
            assert!(rendered.html.contains("<html>"), "{name}");
        }
    }

    #[test]
    fn a_file_in_the_override_folder_replaces_the_builtin_one() {
        let dir = std::env::temp_dir().join(format!("tandem-templates-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("friend_joined")).unwrap();
        std::fs::write(
            dir.join("friend_joined/subject.txt"),
            "Brand: {{ friend_name }} is in",
        )
        .unwrap();
        let templates = Templates::new(Some(dir.clone()));
        let rendered = templates
            .render("friend_joined", &json!({ "friend_name": "Bob" }))
            .unwrap();
        assert_eq!(rendered.subject, "Brand: Bob is in");
        assert!(
            rendered.html.contains("Bob"),
            "the other files stay built in"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
