//! Work that runs off the event loop, and how its answer finds the way back.
//!
//! The loop thread does socket I/O, parsing, routing, cache hits and work bounded by a small
//! constant. Anything whose cost grows with data or waits on something else (password hashing,
//! SQL, compression, directory listings) is a [`Job`]: a handler returns
//! [`Reply::Later`](crate::Reply::Later) and the connection waits, without blocking the loop,
//! while the job runs on the helper pool (`server::pool`).
//!
//! 1. The pool runs the job with a [`Responder`]: the one handle that can answer the request.
//! 2. The job answers through it, at once or later, from its own thread or from any other it
//!    hands the responder to (the database's writer thread answers after its commit).
//! 3. The answer travels back over a channel and wakes the loop (`mio::Waker`); the loop gives
//!    it to the connection if that connection (same slot *and* id) still exists.
//!
//! A responder that is dropped without answering (the job panicked, or its thread is gone)
//! answers 500 itself, so a connection never waits for an answer that cannot come.

use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use mio::Waker;

use crate::events::EventStream;
use crate::http::response::{IntoResponse, Response};
use crate::http::status::StatusCode;
use crate::server::conn::ConnId;

/// Work for the helper pool; it answers through the [`Responder`] it is given.
pub type Job = Box<dyn FnOnce(Responder) + Send + 'static>;

/// A change applied to a job's response before it is sent (CORS or HSTS headers).
type Transform = Box<dyn FnOnce(Response) -> Response + Send + 'static>;

/// What a job produced for its request.
#[derive(Debug)]
pub enum Outcome {
    /// The response to send.
    Response(Response),
    /// An event stream to open (see `events`).
    Stream(EventStream),
    /// The job prepared something (filled a cache); handle the request again.
    Retry,
}

/// The one way to answer a request whose job runs off the loop. `Send`: it may travel to
/// whichever thread finishes the work.
pub struct Responder {
    /// `None` once answered.
    answer_to: Option<AnswerTo>,
    transform: Option<Transform>,
}

/// Where an answer goes: the connection, through the loop's channel and waker.
struct AnswerTo {
    key: ConnId,
    results: Sender<(ConnId, Outcome)>,
    waker: Arc<Waker>,
}

impl Responder {
    /// A responder for the connection `key` (the pool makes one per job).
    pub(crate) fn new(
        key: ConnId,
        results: Sender<(ConnId, Outcome)>,
        waker: Arc<Waker>,
    ) -> Responder {
        Responder {
            answer_to: Some(AnswerTo {
                key,
                results,
                waker,
            }),
            transform: None,
        }
    }

    /// Sends the response.
    pub fn respond(mut self, response: impl IntoResponse) {
        let response = self.transformed(response.into_response());
        self.send(Outcome::Response(response));
    }

    /// Opens an event stream instead of sending a response.
    pub fn stream(mut self, mut stream: EventStream) {
        stream.response = self.transformed(stream.response);
        self.send(Outcome::Stream(stream));
    }

    /// Asks for the request to be handled again, on the loop (see
    /// [`Reply::Prepare`](crate::Reply::Prepare)).
    pub(crate) fn retry(mut self) {
        self.send(Outcome::Retry);
    }

    /// The same responder, applying `change` to the response before the changes added
    /// earlier (the router's CORS and HSTS headers wrap the handler's response).
    pub fn map(mut self, change: impl FnOnce(Response) -> Response + Send + 'static) -> Responder {
        self.transform = Some(match self.transform.take() {
            None => Box::new(change),
            Some(outer) => Box::new(move |response| outer(change(response))),
        });
        self
    }

    fn transformed(&mut self, response: Response) -> Response {
        match self.transform.take() {
            Some(transform) => transform(response),
            None => response,
        }
    }

    fn send(&mut self, outcome: Outcome) {
        if let Some(to) = self.answer_to.take() {
            // The loop is gone only when the server is shutting down: nobody to answer then.
            if to.results.send((to.key, outcome)).is_ok() {
                let _ = to.waker.wake();
            }
        }
    }
}

impl Drop for Responder {
    /// Unanswered: the work failed without saying so (a panic); the client gets a 500.
    fn drop(&mut self) {
        if self.answer_to.is_some() {
            let response = self.transformed(Response::error(StatusCode::INTERNAL_SERVER_ERROR));
            self.send(Outcome::Response(response));
        }
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("key", &self.answer_to.as_ref().map(|to| to.key))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn responder() -> (Responder, mpsc::Receiver<(ConnId, Outcome)>, mio::Poll) {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (sender, receiver) = mpsc::channel();
        let key = ConnId { slot: 3, serial: 7 };
        (Responder::new(key, sender, waker), receiver, poll)
    }

    fn status(outcome: Outcome) -> StatusCode {
        match outcome {
            Outcome::Response(response) => response.status(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answers_once_with_the_changes_applied_inner_first() {
        let (responder, results, _poll) = responder();
        let responder = responder
            .map(|mut response| {
                let before = response.header("X-Step").unwrap_or("nothing").to_owned();
                response.set_header("X-Step", format!("outer after {before}"));
                response
            })
            .map(|response| response.with_header("X-Step", "inner"));
        responder.respond(Response::empty(StatusCode::NO_CONTENT));
        let (key, outcome) = results.try_recv().unwrap();
        assert_eq!((key.slot, key.serial), (3, 7));
        let Outcome::Response(response) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(response.header("X-Step"), Some("outer after inner"));
        assert!(results.try_recv().is_err(), "answered twice");
    }

    #[test]
    fn a_dropped_responder_answers_500() {
        let (responder, results, _poll) = responder();
        let job: Job = Box::new(move |responder| {
            let _keep = responder;
            panic!("handler bug");
        });
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(responder)));
        assert_eq!(
            status(results.try_recv().unwrap().1),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert!(results.try_recv().is_err());
    }
}
