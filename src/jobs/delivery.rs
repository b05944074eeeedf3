//! The delivery worker loop: sends due email every `TANDEM_MAIL_POLL_INTERVAL`.

use crate::delivery::{DeliveryReport, deliver_due};
use crate::state::AppState;

/// Runs the delivery pass until the process ends; a failing pass is logged and the loop goes on.
pub async fn run_forever(state: AppState) {
    let mut ticker = tokio::time::interval(state.settings.mail.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = state.shutdown.stopped() => return,
        }
        let delivered = deliver_due(&state.deliverer()).await;
        if let Ok(report) = &delivered {
            ::metrics::counter!("tandem_emails_sent_total").increment(report.sent as u64);
            ::metrics::counter!("tandem_emails_failed_total")
                .increment((report.retried + report.dead) as u64);
        }
        match delivered {
            Ok(report) if report != DeliveryReport::default() => {
                tracing::info!(?report, "email delivery pass");
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "email delivery pass"),
        }
    }
}
