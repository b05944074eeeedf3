use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tandem::auth::Role;
use tandem::clock::{Clock, SystemClock};
use tandem::config::{LogFormat, Settings};
use tandem::server::Application;
use tandem::state::{AppState, Migrations};

/// Tandem: a self-hosted GraphQL backend for referral and loyalty programs.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the API (the default).
    Serve {
        #[command(flatten)]
        start: StartOptions,
        /// Run the API only, without email delivery and the scheduler, when `tandem worker`
        /// processes run them.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run the background workers only (email delivery and the scheduler), for scale-out.
    Worker {
        #[command(flatten)]
        start: StartOptions,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Recompute the metrics rollups, the kept points and the leaderboard from the data (after
    /// loading rows around the API).
    RebuildRollups,
    /// Print a signed token for calling the API.
    Token {
        #[arg(long, value_enum)]
        role: Role,
        /// The token's subject; for a customer, their externalId.
        #[arg(long)]
        sub: String,
        /// How long the token is valid, e.g. 15m, 24h, 30d.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Fills an empty database with a deterministic demo program (400 days of it).
    SeedDemo {
        /// How many customers.
        #[arg(long, default_value_t = 300)]
        customers: usize,
        /// How many carts, most of which become orders.
        #[arg(long, default_value_t = 900)]
        orders: usize,
        /// The same seed writes the same story.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(clap::Args, Default)]
struct StartOptions {
    /// Apply no migrations: refuse to start unless `tandem migrate` has already run.
    #[arg(long)]
    no_migrate: bool,
}

impl StartOptions {
    fn migrations(&self) -> Migrations {
        if self.no_migrate {
            Migrations::Require
        } else {
            Migrations::Apply
        }
    }
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Schema) = cli.command {
        print!("{}", tandem::graphql::sdl());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("tandem: {error}");
            return ExitCode::FAILURE;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format {
        // One JSON object a line, with the request span's fields (request id, operation, role).
        LogFormat::Json => logs.json().with_current_span(true).init(),
        // Colour codes only where a person reads them; log collectors get plain text.
        LogFormat::Text => logs
            .with_ansi(std::io::stdout().is_terminal() && std::io::stderr().is_terminal())
            .init(),
    }
    let command = cli.command.unwrap_or(Command::Serve {
        start: StartOptions::default(),
        no_workers: false,
    });
    match run(command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tandem: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        Command::Schema => unreachable!("handled before start-up"),
        Command::Worker { start } => {
            let state = AppState::init_with(settings, clock, start.migrations()).await?;
            let stop = tandem::server::termination();
            tracing::info!("tandem worker: delivering email and running the scheduler");
            let workers = tandem::jobs::spawn_supervised(&state);
            stop.await;
            tracing::info!("stopping: the workers finish their step");
            state.shutdown.begin();
            tandem::jobs::drain(workers, state.settings.shutdown_grace).await;
            tracing::info!("stopped");
        }
        Command::SeedDemo {
            customers,
            orders,
            seed,
        } => {
            let (state, manual) = tandem::jobs::demo::state_for_seeding(settings).await?;
            let size = tandem::jobs::demo::DemoSize {
                customers,
                orders,
                seed,
            };
            let report = tandem::jobs::demo::seed(&state, &manual, size).await?;
            println!(
                "seeded {} customers ({} referred), {} orders ({} refunded), {} carts, {} redemptions",
                report.customers,
                report.referred,
                report.orders,
                report.refunds,
                report.carts,
                report.redemptions
            );
        }
        Command::Migrate => {
            AppState::init(settings, clock).await?;
            println!("migrations applied");
        }
        Command::RebuildRollups => {
            let state = AppState::init(settings, clock).await?;
            let rebuilt =
                tandem::rollups::rebuild_beside_writes(&state.db, tandem::rollups::REBUILD_BATCH)
                    .await?;
            println!("rollups rebuilt for {rebuilt} customers");
        }
        Command::Token { role, sub, ttl } => {
            let state = AppState::init(settings, clock.clone()).await?;
            let ttl = chrono::Duration::from_std(ttl)?;
            println!("{}", state.jwt.mint(role, &sub, ttl, clock.now())?);
        }
        Command::Serve { start, no_workers } => {
            let state = AppState::init_with(settings, clock.clone(), start.migrations()).await?;
            let app = Application::build(state)?;
            // Listening for SIGTERM before the banner: whoever waits for the banner may stop us.
            app.stop_on_signals();
            let base = format!("http://{}:{}", app.state().settings.bind.ip(), app.port());
            let mut banner = format!("Tandem is listening on {base}\nGraphiQL: {base}/graphql\n");
            banner.push_str(&token_hint(&app, clock.as_ref())?);
            // A server whose stdout was closed keeps serving: the banner is best effort.
            let mut stdout = std::io::stdout();
            let _ = stdout
                .write_all(banner.as_bytes())
                .and_then(|()| stdout.flush());
            let workers = if no_workers {
                tracing::info!("--no-workers: email delivery and the scheduler run elsewhere");
                Vec::new()
            } else {
                tandem::jobs::spawn_supervised(app.state())
            };
            let state = app.state().clone();
            app.run_until_stopped().await?;
            state.shutdown.begin();
            tandem::jobs::drain(workers, state.settings.shutdown_grace).await;
            tracing::info!("stopped");
        }
    }
    Ok(())
}

/// How long the development token printed at start lasts.
const DEV_TOKEN_HOURS: i64 = 24;

/// The banner's line about tokens. A token is printed only for a person at a terminal running
/// with a generated secret (a development setup): printed anywhere else it ends up in logs.
fn token_hint(app: &Application, clock: &dyn Clock) -> Result<String, Box<dyn std::error::Error>> {
    let settings = &app.state().settings;
    if settings.jwt.public_key_pem.is_some() {
        return Ok(
            "Tokens come from your identity provider (TANDEM_JWT_PUBLIC_KEY is set).\n".into(),
        );
    }
    if settings.jwt.secret.is_none() && std::io::stdout().is_terminal() {
        let token = app.state().jwt.mint(
            Role::Admin,
            "admin",
            chrono::Duration::hours(DEV_TOKEN_HOURS),
            clock.now(),
        )?;
        return Ok(format!(
            "Admin token (development, valid {DEV_TOKEN_HOURS}h): {token}\n  send it as the header  \
             Authorization: Bearer <token>\n"
        ));
    }
    Ok("Mint a token with: tandem token --role admin --sub ops --ttl 1h\n".into())
}
