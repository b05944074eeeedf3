//! Email, the lower half: the outbox written with the events that cause it, templates, the
//! mailer, suppression and unsubscribe tokens. Any capability may enqueue; sending lives in
//! `crate::delivery`, above them all. A new email is one template folder and one
//! `outbox::enqueue` at its event.

pub mod mailer;
pub mod outbox;
pub mod suppression;
pub mod templates;
pub mod unsubscribe;
