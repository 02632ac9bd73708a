use clap::Parser;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = mpospay_gateway::cli::Cli::parse();
    match mpospay_gateway::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
