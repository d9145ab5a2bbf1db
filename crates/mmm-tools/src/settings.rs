//! The tools' view of `mmm_tools.conf` (class TOOLS, spec §2.4): the local host (`this`),
//! the other hosts' ssh and MySQL settings, the copy methods.

use mmm_common::config::{self, BackupMethod, Config, CopyMethodConfig, HostSection, ProgramClass};

use crate::error::{Result, ToolsError};

/// The config base name the tools read by default.
pub const DEFAULT_CONFIG: &str = "mmm_tools";

/// A loaded and validated `mmm_tools.conf`.
#[derive(Debug, Clone)]
pub struct ToolsConfig {
    /// The effective configuration.
    pub cfg: Config,
}

/// One host as the tools see it.
#[derive(Debug, Clone, Copy)]
pub struct Host<'a> {
    /// Its `<host>` section.
    pub section: &'a HostSection,
}

impl ToolsConfig {
    /// Loads `name` (`--config`, default `mmm_tools`) for class TOOLS.
    pub fn load(name: &str) -> Result<ToolsConfig> {
        let name = if name.is_empty() {
            DEFAULT_CONFIG
        } else {
            name
        };
        Ok(ToolsConfig {
            cfg: config::load(name, ProgramClass::Tools)?,
        })
    }

    /// The local host's name (`this`, required for TOOLS).
    pub fn this(&self) -> &str {
        self.cfg.this.as_deref().unwrap_or_default()
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<Host<'_>> {
        self.cfg.host(name).map(|section| Host { section })
    }

    /// The local host.
    pub fn this_host(&self) -> Result<Host<'_>> {
        self.host(self.this())
            .ok_or_else(|| ToolsError::Failed(format!("Invalid 'this' value: '{}'!", self.this())))
    }

    /// The host whose `ip` is `ip` (2.2.1's `get_host_by_ip`).
    pub fn host_by_ip(&self, ip: &str) -> Option<Host<'_>> {
        self.cfg.host_by_ip(ip).map(|section| Host { section })
    }

    /// The host names, sorted (usage text).
    pub fn host_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.cfg.hosts.iter().map(|h| h.name.clone()).collect();
        v.sort();
        v
    }

    /// The copy methods' names, sorted (usage text); with `true_copy_only`, only those
    /// with `true_copy` (what a clone can use).
    pub fn copy_method_names(&self, true_copy_only: bool) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .cfg
            .copy_methods
            .iter()
            .filter(|m| m.true_copy || !true_copy_only)
            .map(|m| m.name.as_str())
            .collect();
        v.sort();
        v
    }

    /// The copy method named `name`.
    pub fn copy_method(&self, name: &str) -> Option<&CopyMethodConfig> {
        self.cfg.copy_methods.iter().find(|m| m.name == name)
    }

    /// `default_copy_method`.
    pub fn default_copy_method(&self) -> &str {
        self.cfg.default_copy_method.as_deref().unwrap_or_default()
    }

    /// `clone_dirs`, sorted and joined with `, ` (the info blocks).
    pub fn clone_dirs_text(&self) -> String {
        let mut v = self.cfg.clone_dirs.clone();
        v.sort();
        v.join(", ")
    }
}

impl<'a> Host<'a> {
    /// The section name.
    pub fn name(&self) -> &'a str {
        &self.section.name
    }

    /// `ip`.
    pub fn ip(&self) -> &'a str {
        self.section.ip.as_deref().unwrap_or_default()
    }

    /// `mysql_port`.
    pub fn mysql_port(&self) -> u16 {
        self.section.mysql_port
    }

    /// A tools directive (`ssh_user`, `backup_dir`...), empty when unset.
    pub fn tool(&self, var: &str) -> &'a str {
        self.section.tool(var).unwrap_or_default()
    }

    /// The snapshot back-end.
    pub fn backup_method(&self) -> BackupMethod {
        self.section.backup_method
    }

    /// `replication_user`, `replication_password`.
    pub fn replication(&self) -> (&'a str, &'a str) {
        (
            self.section.replication_user.as_deref().unwrap_or_default(),
            self.section
                .replication_password
                .as_deref()
                .unwrap_or_default(),
        )
    }

    /// `tools_user`, `tools_password`.
    pub fn tools_account(&self) -> (&'a str, &'a str) {
        (self.tool("tools_user"), self.tool("tools_password"))
    }
}
