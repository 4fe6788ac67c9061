//! `steerer`: steer new flows of a Linux gateway across egress hops and
//! learn which hops serve them best.

use anyhow::Result;
use clap::Parser as _;
use steerer_user::daemon;
use tracing_subscriber::EnvFilter;

mod cli;
mod commands;
use cli::{Cli, Command, DirectoryVerb, LogFormat};
use commands::{flows, port_sets, simulate, simulate_seeds, HopVerb};

/// The error and its causes, "a: b: c", each said once: a library error
/// that already names its cause in its own message (`cannot read X: No
/// such file`) is not followed by the same cause again.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn main() {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,netlink_packet_route=error")),
        )
        .with_writer(std::io::stderr);
    if cli.log_format == LogFormat::Json {
        logs.json().init();
    } else {
        // Colour only for a terminal: a log file or journald gets plain text.
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    if let Err(e) = real_main(cli) {
        eprintln!("steerer: error: {}", error_chain(&e));
        std::process::exit(1);
    }
}

fn real_main(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            iface,
            config,
            attach,
            fresh,
            keep_pins,
            status_file,
            flow_table_size,
            print_ticks,
            wait_for_hops,
        } => daemon::run(daemon::RunOptions {
            iface,
            config,
            attach: attach.mode(),
            fresh,
            keep_pins,
            status_file,
            flow_table_size,
            print_ticks,
            wait_for_hops,
        }),
        Command::Status {
            iface,
            json,
            events,
        } => commands::status(&iface, json, events),
        Command::Why {
            iface,
            proto,
            src,
            dst,
        } => commands::why(&iface, &proto, &src, &dst),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "steerer",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory as _;
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(())
        }
        Command::Check {
            iface,
            config,
            attach,
        } => {
            let opts = daemon::RunOptions {
                iface,
                config,
                attach: attach.mode(),
                fresh: false,
                keep_pins: false,
                status_file: None,
                flow_table_size: None,
                print_ticks: false,
                wait_for_hops: false,
            };
            print!("{}", steerer_user::daemon::check_only(&opts)?);
            Ok(())
        }
        Command::Hop {
            action,
            name,
            iface,
        } => {
            use steerer_user::config::HopState;
            let state = match action {
                HopVerb::Drain => Some(HopState::Drain),
                HopVerb::Disable => Some(HopState::Disabled),
                HopVerb::Enable => None,
            };
            let said = steerer_user::hop_control::request(&iface, &name, state)
                .map_err(anyhow::Error::msg)?;
            println!("{said}");
            Ok(())
        }
        Command::Flows {
            iface,
            json,
            hop,
            sort,
            limit,
        } => flows(&iface, json, hop.as_deref(), sort, limit),
        Command::PortSets {
            consensus,
            microdescs,
            sets,
            json,
        } => port_sets(&consensus, &microdescs, sets as usize, json),
        Command::Simulate {
            scenario,
            seeds: Some(seeds),
            policies,
            ..
        } => simulate_seeds(&scenario, &seeds, &policies),
        Command::Simulate {
            scenario,
            seed,
            out,
            policies,
            seeds: None,
        } => simulate(&scenario, seed, out.as_deref(), &policies),
        Command::Directory {
            action:
                DirectoryVerb::Serve {
                    hops,
                    listen,
                    tls_cert,
                    tls_key,
                },
        } => {
            let tls = tls_cert
                .zip(tls_key)
                .map(|(cert, key)| steerer_user::directory_server::TlsFiles { cert, key });
            steerer_user::directory_server::serve(hops, listen, tls)
        }
        Command::Stats { iface, json } => commands::stats(&iface, json),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    /// `--help` states the flow table's real default.
    #[test]
    fn the_help_gives_the_flow_tables_default_size() {
        use clap::CommandFactory as _;
        let mut cmd = super::Cli::command();
        let run = cmd.find_subcommand_mut("run").expect("run");
        let help = run.render_long_help().to_string();
        let default = steerer_common::limits::FLOW_TABLE_DEFAULT.to_string();
        assert!(help.contains(&format!("(default {default})")), "{help}");
    }

    /// Completions name every subcommand; the man page renders.
    #[test]
    fn completions_and_the_man_page_build() {
        use clap::CommandFactory as _;
        let mut bash = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut super::Cli::command(),
            "steerer",
            &mut bash,
        );
        let bash = String::from_utf8(bash).unwrap();
        let cmd = super::Cli::command();
        for sub in cmd.get_subcommands() {
            assert!(
                bash.contains(sub.get_name()),
                "no {} in bash completions",
                sub.get_name()
            );
        }
        let mut man = Vec::new();
        clap_mangen::Man::new(super::Cli::command())
            .render(&mut man)
            .unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(
            man.starts_with(".ie") || man.contains(".TH steerer"),
            "{man}"
        );
        assert!(
            man.contains("status") && man.contains("completions"),
            "{man}"
        );
    }

    /// The shipped systemd unit starts steerer with options it accepts.
    #[test]
    fn the_systemd_unit_runs_a_command_line_steerer_accepts() {
        let unit = include_str!("../../../../contrib/steerer@.service");
        let line = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("an ExecStart line");
        let args: Vec<String> = line
            .replace("%i", "lan0")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        assert!(args[0].ends_with("/steerer"), "{args:?}");
        let mut argv = vec!["steerer".to_string()];
        argv.extend(args[1..].iter().cloned());
        super::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    }
}
