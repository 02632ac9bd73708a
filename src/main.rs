use clap::Parser;

/// mimalloc instead of glibc's malloc: many small short-lived allocations per request, on
/// several threads (bench/results/mimalloc.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
