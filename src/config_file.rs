//! The configuration file (`--config looplight.toml`) and how it sits under the command line.
//!
//! Every flag of [`Config`] is a key of the same name (`keep-alive-timeout = 0.5`,
//! `cors-origin = ["https://a.example"]`, `compress = true`). The keys are read from clap's own
//! definition of the flags, so a new flag is a new key with no code here, and a value in the
//! file goes through exactly the parser its flag has. Loading, in steps:
//!
//! 1. The command line is read leniently, for `--config`, `--check-config` and which flags it
//!    sets (`--help` and `--version` end here).
//! 2. Each key of the file becomes the arguments its flag would get (`--key=value`; a list is the
//!    flag repeated; `true` is the bare flag, `false` nothing), and each value is checked alone
//!    by its flag's value parser, so that every error names its key and its line.
//! 3. The file's arguments, less the flags the command line sets, then the command line, are
//!    parsed by clap as one command line (relations such as `--cert` requiring `--key` hold
//!    across both), and [`Config::check`] judges the combination.
//!
//! The command line wins: a flag given there replaces the file's value, and a repeatable flag
//! its whole list (`--cors-origin X` leaves only X). A switch the file turns on stays on: there
//! is no flag to turn it off.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Command, CommandFactory, FromArgMatches};
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use crate::config::Config;

/// The flag naming the configuration file (also its clap id).
const CONFIG: &str = "config";
/// The flag asking only to check the configuration (also its clap id).
const CHECK_CONFIG: &str = "check-config";

/// The exit status for a configuration that cannot be used: clap's for a bad flag.
pub const EXIT_BAD_CONFIG: i32 = 2;

/// What the binary was asked to do.
#[derive(Debug)]
pub struct Invocation {
    /// The flags and the file's settings together, checked.
    pub config: Config,
    /// `--check-config`: only say whether the configuration is good.
    pub check_only: bool,
    /// The `--config` file, if one was given.
    pub file: Option<PathBuf>,
}

/// Why a configuration cannot be used.
#[derive(Debug)]
pub enum LoadError {
    /// clap refused the command line (together with the file's settings), or it asked for
    /// `--help` or `--version`, which clap answers itself.
    Flags {
        error: clap::Error,
        file: Option<PathBuf>,
    },
    /// The `--config` file cannot be read.
    Unreadable { path: PathBuf, error: io::Error },
    /// The file's syntax error, or the keys it names wrongly and the values their flags
    /// refuse, in the order of their lines.
    File(Vec<FileError>),
    /// A combination of settings that [`Config::check`] refuses.
    Check(String),
}

/// One error in a configuration file, at a line of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub path: PathBuf,
    /// 1-based; `None` when the parser could not tell.
    pub line: Option<usize>,
    /// Names the key, unless the error is in the syntax.
    pub message: String,
}

/// One key of a configuration file, as the arguments its flag would get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The key: the flag's long name.
    pub key: String,
    /// The line of the key, 1-based.
    pub line: usize,
    /// `--key=value`, once per value of a list; `--key` for a switch that is on, and nothing
    /// for one that is off.
    pub args: Vec<OsString>,
    /// The flag's clap id.
    id: String,
}

/// The binary's command line: the flags of [`Config`], `--config FILE` and `--check-config`.
pub fn command() -> Command {
    Config::command()
        .arg(
            Arg::new(CONFIG)
                .long(CONFIG)
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help_heading("Configuration")
                .help(
                    "Read settings from this TOML file: each key is a flag's long name \
                     (keep-alive-timeout = 0.5); flags given here override it. \
                     See looplight.example.toml",
                ),
        )
        .arg(
            Arg::new(CHECK_CONFIG)
                .long(CHECK_CONFIG)
                .action(ArgAction::SetTrue)
                .help_heading("Configuration")
                .help(
                    "Check the flags and the --config file, say \"configuration ok\" and exit, \
                     without binding a socket or touching the database, root or certificates",
                ),
        )
}

/// The configuration of this process from its flags and `--config` file, as `Config::parse`
/// reads flags: on an error it prints why and exits ([`EXIT_BAD_CONFIG`], or clap's status),
/// and so it does after `--help`, `--version` and `--check-config`.
pub fn parse() -> Config {
    match load(std::env::args_os()) {
        Ok(Invocation {
            config,
            check_only: false,
            ..
        }) => config,
        Ok(invocation) => {
            println!("looplight: {}", invocation.verdict());
            std::process::exit(0)
        }
        Err(error) => error.exit(),
    }
}

/// The configuration from `args` (the program name first, as `std::env::args_os` gives it)
/// and the file its `--config` names.
pub fn load<I, T>(args: I) -> Result<Invocation, LoadError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let flags_error = |file: &Option<PathBuf>| {
        let file = file.clone();
        move |error| LoadError::Flags { error, file }
    };
    // 1. The command line alone. Leniently: a relation it breaks may be mended by the file,
    //    and any other error comes back from step 3, where it is first again.
    let lenient = command()
        .ignore_errors(true)
        .try_get_matches_from(&args)
        .map_err(flags_error(&None))?;
    let file = lenient.get_one::<PathBuf>(CONFIG).cloned();
    // 2. The file's settings, every value checked by its flag's parser.
    let settings = match &file {
        Some(path) => read(path)?,
        None => Vec::new(),
    };
    // 3. Both as one command line: the file's first, without the flags the command line sets.
    let on_command_line =
        |setting: &&Setting| lenient.value_source(&setting.id) == Some(ValueSource::CommandLine);
    let (program, flags) = match args.split_first() {
        Some((program, flags)) => (program.clone(), flags),
        None => (OsString::from("looplight"), &[][..]),
    };
    let from_file = settings
        .iter()
        .filter(|setting| !on_command_line(setting))
        .flat_map(|setting| setting.args.iter().cloned());
    let merged = std::iter::once(program)
        .chain(from_file)
        .chain(flags.iter().cloned());
    let matches = command()
        .try_get_matches_from(merged)
        .map_err(flags_error(&file))?;
    let config = Config::from_arg_matches(&matches).map_err(flags_error(&file))?;
    config.check().map_err(LoadError::Check)?;
    Ok(Invocation {
        config,
        check_only: matches.get_flag(CHECK_CONFIG),
        file,
    })
}

/// The settings of the configuration file at `path`.
pub fn read(path: &Path) -> Result<Vec<Setting>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Unreadable {
        path: path.to_owned(),
        error,
    })?;
    settings(path, &text).map_err(LoadError::File)
}

/// The settings in `text`, a configuration file (`path` only names it in errors), in the order
/// of their lines; or every error found, in that order.
pub fn settings(path: &Path, text: &str) -> Result<Vec<Setting>, Vec<FileError>> {
    let error_at = |offset: Option<usize>, message: String| FileError {
        path: path.to_owned(),
        line: offset.map(|offset| line_of(text, offset)),
        message,
    };
    let document = DeTable::parse(text).map_err(|error| {
        let offset = error.span().map(|span| span.start);
        vec![error_at(offset, error.message().trim_end().to_owned())]
    })?;
    let keys = Keys::of_config();
    let mut settings = Vec::new();
    let mut errors = Vec::new();
    for (key, value) in document.get_ref() {
        match keys.setting(key, value) {
            Ok((args, id)) => settings.push(Setting {
                key: key.get_ref().to_string(),
                line: line_of(text, key.span().start),
                args,
                id,
            }),
            Err((span, message)) => errors.push(error_at(Some(span.start), message)),
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|error| error.line);
        return Err(errors);
    }
    settings.sort_by_key(|setting| setting.line);
    Ok(settings)
}

/// Every key a configuration file may have: the long names of [`Config`]'s flags.
pub fn keys() -> Vec<String> {
    Keys::of_config()
        .flags()
        .filter_map(Arg::get_long)
        .map(str::to_owned)
        .collect()
}

impl Invocation {
    /// What `--check-config` says of a configuration that loaded.
    pub fn verdict(&self) -> String {
        match &self.file {
            Some(path) => format!("configuration ok ({})", path.display()),
            None => "configuration ok".to_owned(),
        }
    }
}

impl LoadError {
    /// Prints the error as the binary does and exits: clap prints its own errors, help and
    /// version with its own status; anything else is a line each, with [`EXIT_BAD_CONFIG`].
    pub fn exit(&self) -> ! {
        if let LoadError::Flags { error, file } = self {
            let across = matches!(
                error.kind(),
                ErrorKind::ArgumentConflict | ErrorKind::MissingRequiredArgument
            );
            if let (true, Some(file)) = (across, file) {
                let _ = error.print();
                eprintln!(
                    "looplight: note: the keys of {} count as the flags of the same name",
                    file.display()
                );
                std::process::exit(error.exit_code());
            }
            error.exit()
        }
        for line in self.to_string().lines() {
            eprintln!("looplight: {line}");
        }
        std::process::exit(EXIT_BAD_CONFIG)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Flags { error, .. } => write!(f, "{}", error.render()),
            LoadError::Unreadable { path, error } => {
                write!(f, "--config {}: {error}", path.display())
            }
            LoadError::File(errors) => {
                let lines: Vec<String> = errors.iter().map(FileError::to_string).collect();
                f.write_str(&lines.join("\n"))
            }
            LoadError::Check(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for LoadError {}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// The flags a file may set, as clap defines them.
struct Keys {
    command: Command,
}

/// Where in the file an error is, and what it is.
type Located = (Range<usize>, String);

impl Keys {
    fn of_config() -> Keys {
        let mut command = Config::command();
        // Settles what the derive leaves to clap (default actions, parsers and values).
        command.build();
        Keys { command }
    }

    /// Every flag with a long name, except clap's own `--help` and `--version`.
    fn flags(&self) -> impl Iterator<Item = &Arg> {
        self.command.get_arguments().filter(|arg| {
            arg.get_long().is_some()
                && !matches!(
                    arg.get_action(),
                    ArgAction::Help
                        | ArgAction::HelpShort
                        | ArgAction::HelpLong
                        | ArgAction::Version
                )
        })
    }

    fn flag(&self, key: &str) -> Option<&Arg> {
        self.flags().find(|arg| arg.get_long() == Some(key))
    }

    /// The arguments and clap id of the flag `key` sets to `value`.
    fn setting(
        &self,
        key: &Spanned<DeString<'_>>,
        value: &Spanned<DeValue<'_>>,
    ) -> Result<(Vec<OsString>, String), Located> {
        let name = key.get_ref().as_ref();
        if name == CONFIG || name == CHECK_CONFIG {
            return Err((key.span(), format!("{name} is for the command line only")));
        }
        let Some(arg) = self.flag(name) else {
            return Err((key.span(), self.unknown(name)));
        };
        let args = match arg.get_action() {
            ArgAction::SetTrue => match value.get_ref() {
                DeValue::Boolean(true) => vec![OsString::from(format!("--{name}"))],
                DeValue::Boolean(false) => Vec::new(),
                other => {
                    let found = describe(other);
                    return Err((
                        value.span(),
                        format!("{name}: expected true or false, found {found}"),
                    ));
                }
            },
            ArgAction::Set => vec![flag_value(arg, name, value)?],
            ArgAction::Append => match value.get_ref() {
                DeValue::Array(items) => items
                    .iter()
                    .map(|item| flag_value(arg, name, item))
                    .collect::<Result<_, _>>()?,
                _ => vec![flag_value(arg, name, value)?],
            },
            other => {
                let message = format!("{name}: cannot be set in a file (its flag is {other:?})");
                return Err((key.span(), message));
            }
        };
        Ok((args, arg.get_id().to_string()))
    }

    /// The message for a key no flag has, with the one meant when only dashes, underscores or
    /// case differ (`keepalive-timeout`, `keep_alive_timeout`).
    fn unknown(&self, key: &str) -> String {
        let bare = |name: &str| {
            name.trim_start_matches('-')
                .replace(['-', '_'], "")
                .to_ascii_lowercase()
        };
        let meant = self
            .flags()
            .filter_map(Arg::get_long)
            .find(|long| bare(long) == bare(key));
        match meant {
            Some(long) => format!("unknown key {key:?} (did you mean {long:?}?)"),
            None => format!("unknown key {key:?}"),
        }
    }
}

/// `--name=value` for one value of the flag `arg`, once its parser has accepted it.
fn flag_value(arg: &Arg, name: &str, value: &Spanned<DeValue<'_>>) -> Result<OsString, Located> {
    let Some(text) = scalar_text(value.get_ref()) else {
        let found = describe(value.get_ref());
        let message = format!("{name}: expected a string or a number, found {found}");
        return Err((value.span(), message));
    };
    parse_alone(arg, &text).map_err(|reason| {
        (
            value.span(),
            format!("{name}: invalid value {text:?}: {reason}"),
        )
    })?;
    Ok(OsString::from(format!("--{name}={text}")))
}

/// A string as it is, a number as it was written (integers in decimal).
fn scalar_text(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(text) => Some(text.to_string()),
        DeValue::Integer(integer) => Some(
            i128::from_str_radix(integer.as_str(), integer.radix())
                .map_or_else(|_| integer.to_string(), |number| number.to_string()),
        ),
        DeValue::Float(float) => Some(float.as_str().to_owned()),
        DeValue::Boolean(_) | DeValue::Datetime(_) | DeValue::Array(_) | DeValue::Table(_) => None,
    }
}

/// A value as an error message shows it.
fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::Boolean(on) => on.to_string(),
        DeValue::Datetime(_) => "a date-time".to_owned(),
        DeValue::Array(_) => "a list".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
        DeValue::String(text) => format!("{text:?}"),
        scalar => scalar_text(scalar).unwrap_or_default(),
    }
}

/// Runs `text` through the value parser of the flag `arg`, as clap does for `--flag text`, in
/// a command of that flag alone (its relations to other flags are step 3's business).
fn parse_alone(arg: &Arg, text: &str) -> Result<(), String> {
    let mut alone = Arg::new(arg.get_id().clone())
        .action(ArgAction::Set)
        .value_parser(arg.get_value_parser().clone());
    if let Some(names) = arg.get_value_names() {
        alone = alone.value_names(names.iter().cloned());
    }
    Command::new("looplight")
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(alone)
        .try_get_matches_from(["--", text])
        .map(drop)
        .map_err(|error| reason(&error, text))
}

/// Why a value parser refused a value, without clap's framing (which names a flag the file
/// does not have).
fn reason(error: &clap::Error, text: &str) -> String {
    if let Some(source) = std::error::Error::source(error) {
        return source.to_string();
    }
    match error.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(valid)) if !valid.is_empty() => {
            return format!("expected one of {}", valid.join(", "));
        }
        _ if text.is_empty() => return "must not be empty".to_owned(),
        _ => {}
    }
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first.trim_start_matches("error: ").to_owned()
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let before = &text.as_bytes()[..offset.min(text.len())];
    before.iter().filter(|&&byte| byte == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;

    /// The example file at the top of the repository.
    const EXAMPLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/looplight.example.toml");
    const EXAMPLE: &str = include_str!("../looplight.example.toml");

    /// Loads `toml` (written to a temporary `looplight.toml`) under the command line `flags`.
    fn load_with(toml: &str, flags: &[&str]) -> Result<Invocation, LoadError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("looplight.toml");
        std::fs::write(&path, toml).unwrap();
        let mut args = vec![OsString::from("looplight"), "--config".into(), path.into()];
        args.extend(flags.iter().map(OsString::from));
        load(args)
    }

    fn config_from(toml: &str, flags: &[&str]) -> Config {
        match load_with(toml, flags) {
            Ok(invocation) => invocation.config,
            Err(error) => panic!("{toml}\n{flags:?}\nrefused: {error}"),
        }
    }

    /// The errors `text` gets as a file named `looplight.toml`, one a line.
    fn file_errors(text: &str) -> Vec<String> {
        match settings(Path::new("looplight.toml"), text) {
            Ok(settings) => panic!("{text}\naccepted: {settings:?}"),
            Err(errors) => errors.iter().map(FileError::to_string).collect(),
        }
    }

    fn same(a: &Config, b: &Config) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn a_file_sets_what_the_same_flags_set() {
        let file = r#"
            addr = "127.0.0.2:9000"
            root = "site"
            quiet = true
            max-head-bytes = 4096
            max-uri-bytes = 1024
            max-headers = 20
            max-body-bytes = 2_000_000
            header-timeout = 0.5
            body-timeout = 3
            keep-alive-timeout = 1.25
            write-timeout = 4
            shutdown-timeout = 2e0
            max-connections = 500
            workers = 3
            helpers = 0x5
            cache-control = "public, max-age=60"
            immutable-fingerprinted = true
            compress = true
            file-cache-bytes = 1000
            list-dirs = true
            spa = true
            db = "data/site.db"
            max-json-body = 2048
            cors-origin = ["https://a.example", "https://b.example"]
            session-ttl = 3600
            sse-heartbeat = 7.5
            seed-posts = 12
            tls-addr = "127.0.0.1:8444"
            cert = "fullchain.pem"
            key = "privkey.pem"
            tls-self-signed = false
            redirect-http = true
            hsts = 60
        "#;
        let flags = [
            "looplight",
            "--addr=127.0.0.2:9000",
            "--root=site",
            "--quiet",
            "--max-head-bytes=4096",
            "--max-uri-bytes=1024",
            "--max-headers=20",
            "--max-body-bytes=2000000",
            "--header-timeout=0.5",
            "--body-timeout=3",
            "--keep-alive-timeout=1.25",
            "--write-timeout=4",
            "--shutdown-timeout=2",
            "--max-connections=500",
            "--workers=3",
            "--helpers=5",
            "--cache-control=public, max-age=60",
            "--immutable-fingerprinted",
            "--compress",
            "--file-cache-bytes=1000",
            "--list-dirs",
            "--spa",
            "--db=data/site.db",
            "--max-json-body=2048",
            "--cors-origin=https://a.example",
            "--cors-origin=https://b.example",
            "--session-ttl=3600",
            "--sse-heartbeat=7.5",
            "--seed-posts=12",
            "--tls-addr=127.0.0.1:8444",
            "--cert=fullchain.pem",
            "--key=privkey.pem",
            "--redirect-http",
            "--hsts=60",
        ];
        let from_file = config_from(file, &[]);
        let from_flags = Config::parse_from(flags);
        assert!(
            same(&from_file, &from_flags),
            "file:  {from_file:?}\nflags: {from_flags:?}"
        );
        assert!(!same(&from_file, &Config::defaults()));
        assert_eq!(from_file.header_timeout, Duration::from_millis(500));
        assert_eq!(from_file.helpers, Some(5), "0x5 is 5");
    }

    #[test]
    fn an_empty_file_or_none_leaves_the_defaults() {
        assert!(same(&config_from("", &[]), &Config::defaults()));
        assert!(same(
            &config_from("# only a comment\n\n", &[]),
            &Config::defaults()
        ));
        let invocation = load(["looplight"]).unwrap();
        assert!(same(&invocation.config, &Config::defaults()));
        assert_eq!(invocation.file, None);
        assert!(!invocation.check_only);
    }

    #[test]
    fn flags_on_the_command_line_win_over_the_file() {
        let file = r#"
            cache-control = "max-age=60"
            cors-origin = ["https://a.example", "https://b.example"]
            workers = 3
            seed-posts = 5
        "#;
        let config = config_from(
            file,
            &[
                "--cache-control",
                "no-store",
                "--cors-origin",
                "https://c.example",
                "--seed-posts=0",
            ],
        );
        assert_eq!(config.cache_control, "no-store");
        assert_eq!(
            config.cors_origin,
            ["https://c.example"],
            "a repeatable flag replaces the file's whole list"
        );
        assert_eq!(
            config.seed_posts, 0,
            "a flag equal to the default still wins"
        );
        assert_eq!(
            config.workers,
            Some(3),
            "what the command line leaves is the file's"
        );
        // Flags before --config win just the same.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("looplight.toml");
        std::fs::write(&path, file).unwrap();
        let args = ["looplight", "--workers", "2", "--config"].map(OsString::from);
        let before = load(args.into_iter().chain([path.into_os_string()])).unwrap();
        assert_eq!(before.config.workers, Some(2));
        assert_eq!(before.config.cache_control, "max-age=60");
    }

    #[test]
    fn switches_are_true_or_false() {
        let off = config_from("quiet = false\ncompress = false", &[]);
        assert!(!off.quiet && !off.compress);
        let on = config_from("quiet = true\ncompress = true", &[]);
        assert!(on.quiet && on.compress);
        assert!(
            config_from("quiet = false", &["--quiet"]).quiet,
            "the flag turns it on"
        );
        assert_eq!(
            file_errors("spa = true\nquiet = \"yes\"\nlist-dirs = 1"),
            [
                r#"looplight.toml:2: quiet: expected true or false, found "yes""#,
                "looplight.toml:3: list-dirs: expected true or false, found 1",
            ]
        );
    }

    #[test]
    fn a_repeatable_flag_takes_a_list_or_one_value() {
        let list = config_from(
            r#"cors-origin = ["https://a.example", "https://b.example"]"#,
            &[],
        );
        assert_eq!(list.cors_origin, ["https://a.example", "https://b.example"]);
        let one = config_from(r#"cors-origin = "https://a.example""#, &[]);
        assert_eq!(one.cors_origin, ["https://a.example"]);
        let none = config_from("cors-origin = []", &[]);
        assert!(none.cors_origin.is_empty());
        // An element's error is at the element's line.
        assert_eq!(
            file_errors("cors-origin = [\n  \"https://a.example\",\n  true,\n]"),
            ["looplight.toml:3: cors-origin: expected a string or a number, found true"]
        );
        assert_eq!(
            file_errors("addr = [\"127.0.0.1:1\"]"),
            [r#"looplight.toml:1: addr: expected a string or a number, found a list"#]
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let text = "addr = \"127.0.0.1:1\"\n\n# comment\nroot = \"www\"\n\n\nkeepalive-timeout = 3\n\
                    keep_alive_timeout = 3\nlisten = 1\n[server]\nport = 80\n";
        assert_eq!(
            file_errors(text),
            [
                r#"looplight.toml:7: unknown key "keepalive-timeout" (did you mean "keep-alive-timeout"?)"#,
                r#"looplight.toml:8: unknown key "keep_alive_timeout" (did you mean "keep-alive-timeout"?)"#,
                r#"looplight.toml:9: unknown key "listen""#,
                r#"looplight.toml:10: unknown key "server""#,
            ]
        );
        assert_eq!(
            file_errors("\nconfig = \"other.toml\"\ncheck-config = true"),
            [
                "looplight.toml:2: config is for the command line only",
                "looplight.toml:3: check-config is for the command line only",
            ]
        );
    }

    #[test]
    fn bad_values_are_named_with_their_key_and_line() {
        let text = "addr = \"127.0.0.1:1\"\n\nheader-timeout = \"soon\"\nbody-timeout = -1\n\
                    workers = 0\naddr2 = 1\nmax-headers = 1.5\nroot = \"\"\nmax-body-bytes = \"lots\"\n\
                    tls-addr = \"localhost\"\nhsts = 1979-05-27\n";
        assert_eq!(
            file_errors(text),
            [
                r#"looplight.toml:3: header-timeout: invalid value "soon": not a number of seconds"#,
                r#"looplight.toml:4: body-timeout: invalid value "-1": cannot convert float seconds to Duration: value is negative"#,
                r#"looplight.toml:5: workers: invalid value "0": 0 is not in 1..=65535"#,
                r#"looplight.toml:6: unknown key "addr2""#,
                r#"looplight.toml:7: max-headers: invalid value "1.5": invalid digit found in string"#,
                r#"looplight.toml:8: root: invalid value "": must not be empty"#,
                r#"looplight.toml:9: max-body-bytes: invalid value "lots": invalid digit found in string"#,
                r#"looplight.toml:10: tls-addr: invalid value "localhost": invalid socket address syntax"#,
                "looplight.toml:11: hsts: expected a string or a number, found a date-time",
            ]
        );
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let errors = file_errors("addr = \"127.0.0.1:1\"\nroot = \"www\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("looplight.toml:2: "), "{errors:?}");
        let errors = file_errors("workers = 2\n\n\nworkers = 3\n");
        assert!(errors[0].starts_with("looplight.toml:4: "), "{errors:?}");
        assert!(errors[0].contains("duplicate"), "{errors:?}");
        let errors = file_errors("[server\naddr = 1");
        assert!(errors[0].starts_with("looplight.toml:1: "), "{errors:?}");
    }

    #[test]
    fn load_reports_every_error_of_the_file_and_reading_it() {
        let error = load_with("workers = 0\nwrkers = 2", &[]).unwrap_err();
        let LoadError::File(errors) = &error else {
            panic!("{error:?}")
        };
        assert_eq!(errors.len(), 2);
        let message = error.to_string();
        assert!(message.contains("looplight.toml:1: workers: "), "{message}");
        assert!(
            message.contains("looplight.toml:2: unknown key \"wrkers\""),
            "{message}"
        );
        let error = load(["looplight", "--config", "/nonexistent/looplight.toml"]).unwrap_err();
        assert!(matches!(error, LoadError::Unreadable { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("--config /nonexistent/looplight.toml: "),
            "{error}"
        );
    }

    #[test]
    fn rules_between_flags_hold_across_the_file_and_the_command_line() {
        // --cert requires --key, whichever side each is on.
        let error = load_with(r#"cert = "c.pem""#, &[]).unwrap_err();
        let LoadError::Flags { error: clap, file } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(clap.kind(), ErrorKind::MissingRequiredArgument);
        assert!(clap.to_string().contains("--key"), "{clap}");
        assert!(file.is_some());
        let both = config_from(r#"cert = "c.pem""#, &["--key", "k.pem"]);
        assert!(both.cert_source().is_some());
        // --tls-self-signed conflicts with --cert.
        let error = load_with("tls-self-signed = true", &["--cert=c", "--key=k"]).unwrap_err();
        assert!(matches!(error, LoadError::Flags { .. }), "{error:?}");
        // Config::check: --hsts needs HTTPS, from the file too.
        let error = load_with("hsts = 60", &[]).unwrap_err();
        let LoadError::Check(message) = &error else {
            panic!("{error:?}")
        };
        assert!(message.contains("--hsts"), "{message}");
        assert!(
            config_from("hsts = 60", &["--tls-self-signed"])
                .hsts
                .is_some()
        );
    }

    #[test]
    fn command_line_errors_are_clap_s_own() {
        let error = load_with("workers = 2", &["--workers", "0"]).unwrap_err();
        let LoadError::Flags { error: clap, .. } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(clap.kind(), ErrorKind::ValueValidation);
        assert_eq!(clap.exit_code(), EXIT_BAD_CONFIG);
        let error = load(["looplight", "--no-such-flag"]).unwrap_err();
        assert!(matches!(error, LoadError::Flags { .. }), "{error:?}");
        let help = load(["looplight", "--help"]).unwrap_err();
        let LoadError::Flags { error: clap, .. } = &help else {
            panic!("{help:?}")
        };
        assert_eq!(clap.kind(), ErrorKind::DisplayHelp);
        let help = clap.to_string();
        assert!(
            help.contains("--config <FILE>") && help.contains("--check-config"),
            "{help}"
        );
    }

    #[test]
    fn check_config_is_a_flag_that_only_checks() {
        let invocation = load_with("workers = 2", &["--check-config"]).unwrap();
        assert!(invocation.check_only);
        assert!(
            invocation.verdict().starts_with("configuration ok ("),
            "{}",
            invocation.verdict()
        );
        assert!(invocation.verdict().ends_with("looplight.toml)"));
        let flags_only = load(["looplight", "--check-config", "--workers", "2"]).unwrap();
        assert!(flags_only.check_only);
        assert_eq!(flags_only.verdict(), "configuration ok");
        assert!(!load_with("", &[]).unwrap().check_only);
    }

    /// The example's entries, commented out or not, as a TOML document of its own.
    fn example_entries() -> String {
        let is_entry = |line: &str| {
            line.split_once(" = ").is_some_and(|(key, _)| {
                !key.is_empty()
                    && key.bytes().all(|byte| {
                        byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-'
                    })
            })
        };
        // Other lines are left blank, so that lines keep their numbers.
        let lines: Vec<&str> = EXAMPLE
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .map(|line| if is_entry(line) { line } else { "" })
            .collect();
        lines.join("\n")
    }

    #[test]
    fn the_example_file_has_every_flag_with_its_default() {
        let example = Path::new("looplight.example.toml");
        // As it is, every entry commented out: the defaults.
        let as_is = load(["looplight", "--config", EXAMPLE_PATH]).unwrap();
        assert!(same(&as_is.config, &Config::defaults()));
        // Uncommented: one valid entry per flag, no more.
        let entries = settings(example, &example_entries())
            .unwrap_or_else(|errors| panic!("looplight.example.toml: {errors:#?}"));
        let in_example: Vec<&str> = entries.iter().map(|entry| entry.key.as_str()).collect();
        for key in keys() {
            assert!(
                in_example.contains(&key.as_str()),
                "--{key} has no entry in looplight.example.toml: add a comment saying what it \
                 does and `# {key} = <its default>` (or an example value when it has none)"
            );
        }
        assert_eq!(in_example.len(), keys().len(), "{in_example:?}");
        // An entry for a flag with a default shows that default.
        let command = Keys::of_config();
        for entry in &entries {
            let arg = command.flag(&entry.key).unwrap();
            let defaults = arg.get_default_values();
            let default_args: Vec<OsString> = match arg.get_action() {
                ArgAction::SetTrue if defaults.iter().any(|value| value == "true") => {
                    vec![format!("--{}", entry.key).into()]
                }
                ArgAction::SetTrue => Vec::new(),
                _ if defaults.is_empty() => continue,
                _ => defaults
                    .iter()
                    .map(|value| {
                        let value = value.to_string_lossy();
                        format!("--{}={value}", entry.key).into()
                    })
                    .collect(),
            };
            assert_eq!(
                entry.args, default_args,
                "looplight.example.toml:{} should show the default of --{}",
                entry.line, entry.key
            );
        }
        // And together they make a configuration that loads.
        let dir = tempfile::tempdir().unwrap();
        let uncommented = dir.path().join("uncommented.toml");
        std::fs::write(&uncommented, example_entries()).unwrap();
        let config = load([
            "looplight".into(),
            "--config".into(),
            uncommented.into_os_string(),
        ]);
        assert!(config.is_ok(), "{:?}", config.err());
    }

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of("", 0), 1);
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a\nb\n", 99), 3);
    }
}
