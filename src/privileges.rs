//! Root only as long as it takes to bind: `--user NAME` gives the process to NAME once the
//! listeners are bound (ports below 1024 need root) and the database is open.
//!
//! The order is the usual one (nginx, OpenSSH): the groups NAME belongs to, then its group,
//! then its user, last, since a process that is no longer root cannot change its groups.
//! glibc applies `setuid`/`setgid` to every thread of the process, so threads started before
//! (the database writer) are NAME too. Afterwards root must be out of reach: getting it back is
//! tried, and success is an error.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User, chown, geteuid, getuid, initgroups, setgid, setuid};

/// Whether the process runs as root (its effective user).
pub fn running_as_root() -> bool {
    geteuid().is_root()
}

/// The account `--user` names.
#[derive(Debug)]
pub struct Account {
    name: String,
    uid: Uid,
    gid: Gid,
}

impl Account {
    /// Looks `name` up in the system's user database (NSS: /etc/passwd, LDAP, …).
    pub fn named(name: &str) -> io::Result<Account> {
        let user = User::from_name(name)
            .map_err(io::Error::from)?
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no user named {name:?}"))
            })?;
        Ok(Account {
            name: name.to_owned(),
            uid: user.uid,
            gid: user.gid,
        })
    }

    pub fn uid(&self) -> u32 {
        self.uid.as_raw()
    }

    /// Gives `files` (those that exist) to the account, so that it can still use them (the
    /// SQLite database with its `-wal` and `-shm` files, the access log), then makes the
    /// process the account's for good.
    pub fn become_it(&self, files: &[PathBuf]) -> io::Result<()> {
        for file in files.iter().filter(|file| file.exists()) {
            chown(file.as_path(), Some(self.uid), Some(self.gid))
                .map_err(|error| with_path(error, file))?;
        }
        let name = CString::new(self.name.as_str())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a user name with a NUL"))?;
        initgroups(&name, self.gid).map_err(io::Error::from)?;
        setgid(self.gid).map_err(io::Error::from)?;
        setuid(self.uid).map_err(io::Error::from)?;
        if !self.uid.is_root() && (setuid(Uid::from_raw(0)).is_ok() || getuid().is_root()) {
            return Err(io::Error::other("root could be taken back after --user"));
        }
        Ok(())
    }
}

/// The database files to hand to `--user`: the SQLite file and its WAL companions.
pub fn sqlite_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect()
}

fn with_path(error: nix::Error, path: &Path) -> io::Error {
    let error = io::Error::from(error);
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_user_is_an_error_that_names_it() {
        let error = Account::named("no-such-user-looplight").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(error.to_string().contains("no-such-user-looplight"));
    }

    #[test]
    fn root_is_found_by_name() {
        assert_eq!(Account::named("root").unwrap().uid(), 0);
    }

    #[test]
    fn the_database_comes_with_its_wal_and_shm_files() {
        assert_eq!(
            sqlite_files(Path::new("data/site.db")),
            [
                PathBuf::from("data/site.db"),
                PathBuf::from("data/site.db-wal"),
                PathBuf::from("data/site.db-shm")
            ]
        );
    }
}
