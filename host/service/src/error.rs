//! What an operation can fail with, and where in the input the problem is.
//!
//! INVARIANT: no message carries an HCP's contact details. Input values
//! are echoed only after [`omnigate_core::redact::redact`], and contact
//! fields are never echoed at all.

use std::fmt;

use omnigate_core::StoreError;
use omnigate_core::redact::redact;
use serde::Serialize;

/// Where a problem is in the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Location {
    /// A line of a JSON-lines input (a file, or standard input as `-`).
    Line {
        /// The file name as given.
        file: String,
        /// The line, from 1.
        line: usize,
        /// JSON path within the line's document, `$` for the whole of it.
        path: String,
    },
    /// A JSON document: a request body, a file.
    Document {
        /// What it is: `request body`, a file name.
        name: String,
        /// JSON path within it, e.g. `$.records[2].channel`.
        path: String,
    },
    /// A single argument: a path segment, a query parameter, a command-line
    /// argument.
    Argument {
        /// Its name, e.g. `role`, `hash`.
        name: String,
    },
}

impl Location {
    /// The JSON path of the bad value, if the problem is inside a document.
    pub fn json_path(&self) -> Option<&str> {
        match self {
            Location::Line { path, .. } | Location::Document { path, .. } => Some(path),
            Location::Argument { .. } => None,
        }
    }

    /// The same place, one step deeper: `field` is appended to the path as
    /// `.field` (or as `[n]` when it starts with `[`).
    pub fn child(&self, field: &str) -> Location {
        let join = |path: &str| {
            if field.is_empty() {
                path.to_owned()
            } else if field.starts_with('[') || field.starts_with('.') {
                format!("{path}{field}")
            } else {
                format!("{path}.{field}")
            }
        };
        match self {
            Location::Line { file, line, path } => Location::Line {
                file: file.clone(),
                line: *line,
                path: join(path),
            },
            Location::Document { name, path } => Location::Document {
                name: name.clone(),
                path: join(path),
            },
            Location::Argument { name } => Location::Argument {
                name: if field.is_empty() {
                    name.clone()
                } else {
                    format!("{name}.{field}")
                },
            },
        }
    }

    /// An argument.
    pub fn argument(name: &str) -> Location {
        Location::Argument {
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line { file, line, path } if path == "$" => {
                write!(f, "line {line} of {file}")
            }
            Location::Line { file, line, path } => write!(f, "line {line} of {file}, at {path}"),
            Location::Document { name, path } => write!(f, "{name}, at {path}"),
            Location::Argument { name } => write!(f, "argument `{name}`"),
        }
    }
}

/// What an operation failed with.
///
/// Each variant has a stable [`code`](ServiceError::code) and a
/// [`kind`](ServiceError::kind) that the HTTP layer maps to a status and the
/// command line to an exit status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Input that does not parse or breaks a rule of its type. Nothing was
    /// changed.
    #[error("{at}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// What is wrong.
        message: String,
    },
    /// Something named does not exist. Nothing was changed.
    #[error("{}{message}", at.as_ref().map(|a| format!("{a}: ")).unwrap_or_default())]
    NotFound {
        /// `unknown-hcp`, `unknown-version`, `unknown-item`, `unknown-merge`.
        code: &'static str,
        /// What was not found.
        message: String,
        /// Where it was named, if in a document.
        at: Option<Location>,
    },
    /// A rule of the lifecycle or of review refused the action. Nothing was
    /// changed.
    #[error("{message}")]
    Refused {
        /// `wrong-state`, `not-current-version`, `author-cannot-review`,
        /// `role-not-required`, `duplicate-sign-off`, `version-of-other-item`,
        /// `conflict`.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// A batch with more items than one call may carry.
    #[error("{message}")]
    TooLarge {
        /// Why.
        message: String,
    },
    /// The store failed; the change was rolled back. The message names the
    /// operation and never holds stored values, but it is for operators,
    /// not for API clients.
    #[error("{message}")]
    Internal {
        /// What failed.
        message: String,
    },
}

/// How a [`ServiceError`] is to be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Bad input: HTTP 400, exit status 2.
    Invalid,
    /// Unknown HCP, version, item, merge: HTTP 404, exit status 2.
    NotFound,
    /// Refused by a rule: HTTP 409, exit status 1.
    Refused,
    /// Too large: HTTP 413, exit status 2.
    TooLarge,
    /// The store failed: HTTP 500, exit status 2.
    Internal,
}

impl ServiceError {
    /// Bad input at `at`. `message` must not echo contact details; pass
    /// echoed input through [`redact`] first (see [`ServiceError::invalid_value`]).
    pub fn invalid(at: Location, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            at,
            message: message.into(),
        }
    }

    /// Bad input whose message may echo what the user typed: redacted.
    pub fn invalid_value(at: Location, message: &str) -> Self {
        ServiceError::Invalid {
            at,
            message: redact(message).into_owned(),
        }
    }

    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Invalid { .. } => "invalid-input",
            ServiceError::NotFound { code, .. } | ServiceError::Refused { code, .. } => code,
            ServiceError::TooLarge { .. } => "too-large",
            ServiceError::Internal { .. } => "internal",
        }
    }

    /// How to report it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Invalid { .. } => ErrorKind::Invalid,
            ServiceError::NotFound { .. } => ErrorKind::NotFound,
            ServiceError::Refused { .. } => ErrorKind::Refused,
            ServiceError::TooLarge { .. } => ErrorKind::TooLarge,
            ServiceError::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// Where in the input the problem is, if it is in the input.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ServiceError::Invalid { at, .. } => Some(at),
            ServiceError::NotFound { at, .. } => at.as_ref(),
            _ => None,
        }
    }

    /// The message without the location.
    pub fn message(&self) -> String {
        match self {
            ServiceError::Invalid { message, .. }
            | ServiceError::NotFound { message, .. }
            | ServiceError::Refused { message, .. }
            | ServiceError::TooLarge { message }
            | ServiceError::Internal { message } => message.clone(),
        }
    }

    /// An unknown HCP, named at `at` if the name came from a document.
    pub(crate) fn unknown_hcp(hcp: &omnigate_core::HcpId, at: Option<Location>) -> Self {
        ServiceError::NotFound {
            code: "unknown-hcp",
            message: format!("unknown HCP `{hcp}`"),
            at,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::UnknownHcp(hcp) => ServiceError::unknown_hcp(&hcp, None),
            StoreError::EventForUnknownHcp { .. } => ServiceError::NotFound {
                code: "unknown-hcp",
                message,
                at: None,
            },
            StoreError::UnknownVersion(_) => ServiceError::NotFound {
                code: "unknown-version",
                message,
                at: None,
            },
            StoreError::InvalidEvent { .. } => ServiceError::Invalid {
                at: Location::Document {
                    name: "batch".into(),
                    path: "$".into(),
                },
                message,
            },
            StoreError::InvalidInput(m) if m.starts_with("no active HCP merge") => {
                ServiceError::NotFound {
                    code: "unknown-merge",
                    message: m,
                    at: None,
                }
            }
            // What is left of the store's input checks after the service's
            // own: conflicts with what is stored (a merge of a merged
            // record, an earlier version stored again).
            StoreError::InvalidInput(m) => ServiceError::Refused {
                code: "conflict",
                message: m,
            },
            StoreError::VersionOfOtherItem { .. } => ServiceError::Refused {
                code: "version-of-other-item",
                message,
            },
            StoreError::NotCurrentVersion { .. } => ServiceError::Refused {
                code: "not-current-version",
                message,
            },
            StoreError::WrongState { .. } => ServiceError::Refused {
                code: "wrong-state",
                message,
            },
            StoreError::AuthorCannotReview { .. } => ServiceError::Refused {
                code: "author-cannot-review",
                message,
            },
            StoreError::RoleNotRequired { .. } => ServiceError::Refused {
                code: "role-not-required",
                message,
            },
            StoreError::DuplicateSignOff { .. } => ServiceError::Refused {
                code: "duplicate-sign-off",
                message,
            },
            StoreError::UnknownCampaign(_) => ServiceError::NotFound {
                code: "unknown-campaign",
                message,
                at: None,
            },
            StoreError::CampaignExists(_) => ServiceError::Refused {
                code: "conflict",
                message,
            },
            StoreError::CampaignState { .. } | StoreError::JourneyState { .. } => {
                ServiceError::Refused {
                    code: "wrong-state",
                    message,
                }
            }
            StoreError::UnknownJourney(_) => ServiceError::NotFound {
                code: "unknown-journey",
                message,
                at: None,
            },
            StoreError::JourneyExists(_) => ServiceError::Refused {
                code: "conflict",
                message,
            },
            _ => ServiceError::Internal { message },
        }
    }
}

/// Shorthand for service results.
pub type ServiceResult<T> = Result<T, ServiceError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_like_a_compiler_message() {
        let line = Location::Line {
            file: "consent.jsonl".into(),
            line: 3,
            path: "$".into(),
        };
        let e = ServiceError::invalid(line.child("channel"), "unknown channel `sms2`");
        assert_eq!(
            e.to_string(),
            "line 3 of consent.jsonl, at $.channel: unknown channel `sms2`"
        );
        let doc = Location::Document {
            name: "request body".into(),
            path: "$.records".into(),
        };
        assert_eq!(
            doc.child("[2]").child("hcp").to_string(),
            "request body, at $.records[2].hcp"
        );
        assert_eq!(Location::argument("role").to_string(), "argument `role`");
    }

    #[test]
    fn echoed_values_are_redacted() {
        let e = ServiceError::invalid_value(
            Location::argument("id"),
            "invalid type: string \"jane@clinic.example\", expected u64",
        );
        assert!(!e.to_string().contains("jane@"), "{e}");
    }
}
