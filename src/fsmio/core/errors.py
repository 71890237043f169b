"""The exceptions of fsmio, with the names ginsfsm documented.

Which are raised, which are returned and which are only logged is part of the contract
(see docs/differences.md):

* ``MachineError``: a bad FSM dict, reported once with *every* problem found.
* ``StateError``: an unknown state name or index.
* ``EventError``: an event that is neither a ``str`` nor an ``Event``, or a bad event name
  in ``subscribe_event``.
* ``EventNotAcceptedError``: an event unknown, or not accepted in the current state.
  ``send_event`` *returns the class* (and logs a warning), as ginsfsm did; with
  ``strict_events`` on, it raises an instance instead.
* ``GObjError``: bad gclass, parent, destination or subscriber; unknown or duplicate unique
  name; ``post_event`` without a GAplic.
* ``GConfigTemplateError`` / ``GConfigValidateError``: a bad config template, or a bad
  parameter name or value.
"""

from __future__ import annotations


class FsmioError(Exception):
    """Base class of every fsmio error (not in ginsfsm; catch the specific ones)."""


class MachineError(FsmioError):
    """The FSM dict is malformed. The message lists every problem found."""


class StateError(FsmioError):
    """A state name or index that the machine does not have."""


class EventError(FsmioError):
    """An event that is not a ``str`` or an ``Event``, or a bad event name."""


class EventNotAcceptedError(EventError):
    """The event is unknown, or the current state has no row for it."""


class SendDepthError(EventError):
    """Synchronous ``send_event`` calls nested deeper than the limit (an event cycle)."""


class GObjError(FsmioError):
    """Misuse of the gobj tree: bad gclass, parent, destination, subscriber or name."""


class GConfigTemplateError(FsmioError):
    """A GConfig template is malformed."""


class GConfigValidateError(FsmioError, ValueError):
    """A parameter name that the gclass does not have, or a value it cannot take."""
