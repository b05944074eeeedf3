//! Email: the outbox written with the events that cause it, the delivery worker, templates,
//! invitations, suppression and unsubscribing. A new email is one template folder and one
//! `outbox::enqueue` at its event.

pub mod delivery;
pub mod invites;
pub mod mailer;
pub mod outbox;
pub mod suppression;
pub mod templates;
pub mod unsubscribe;
