//! Typed indices: [`HostId`] (a host in configuration order) and `RoleId` (a role in
//! configuration order), and `PerHost`, a vector indexed by `HostId`.

use std::fmt;
use std::ops::{Index, IndexMut};

/// A host, as its index in configuration order (`config.hosts[id.index()]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostId(pub usize);

impl HostId {
    /// The index in configuration order.
    pub fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A role, as its index in configuration order (`config.roles[id.0]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct RoleId(pub(crate) usize);

/// One `T` per host, in configuration order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PerHost<T>(Vec<T>);

impl<T> PerHost<T> {
    /// From values in configuration order.
    pub(crate) fn new(v: Vec<T>) -> PerHost<T> {
        PerHost(v)
    }

    /// The number of hosts.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Every host id, in configuration order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = HostId> + 'static {
        (0..self.0.len()).map(HostId)
    }

    /// The value of `host`, if it exists.
    pub(crate) fn get(&self, host: HostId) -> Option<&T> {
        self.0.get(host.0)
    }

    /// The value of `host`, if it exists.
    pub(crate) fn get_mut(&mut self, host: HostId) -> Option<&mut T> {
        self.0.get_mut(host.0)
    }

    /// The values in configuration order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }

    /// The values in configuration order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.0.iter_mut()
    }

    /// (id, value) in configuration order.
    pub(crate) fn enumerate(&self) -> impl Iterator<Item = (HostId, &T)> {
        self.0.iter().enumerate().map(|(i, t)| (HostId(i), t))
    }
}

impl<T> Index<HostId> for PerHost<T> {
    type Output = T;
    fn index(&self, host: HostId) -> &T {
        &self.0[host.0]
    }
}

impl<T> IndexMut<HostId> for PerHost<T> {
    fn index_mut(&mut self, host: HostId) -> &mut T {
        &mut self.0[host.0]
    }
}

impl<'a, T> IntoIterator for &'a PerHost<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'a, T> IntoIterator for &'a mut PerHost<T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter_mut()
    }
}
