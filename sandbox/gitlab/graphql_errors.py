"""GraphQL errors worded as graphql-ruby (GitLab's engine) words them, not as graphql-core does.

A client that recognises errors by their text must see GitLab's text. graphql-ruby's static
validation rules (lib/graphql/static_validation/rules/*.rb) produce, with an ``extensions.code``:

- fields_are_defined_on_type.rb: ``Field 'x' doesn't exist on type 'Y'`` (undefinedField)
- arguments_are_defined.rb: ``Field 'x' doesn't accept argument 'a'`` (argumentNotAccepted)
- required_arguments_are_present.rb: ``Field 'x' is missing required arguments: a``
  (missingRequiredArguments)
- variables_are_used_and_defined.rb: ``Variable $v is declared by Op but not used``
  (variableNotUsed), ``Variable $v is used by Op but not declared`` (variableNotDefined)
- fields_have_appropriate_selections.rb: ``Field must have selections (field 'x' returns T but
  has no selections. Did you mean 'x { ... }'?)`` and ``Selections can't be made on scalars
  (field 'x' returns T but has selections [a, b])`` (selectionMismatch)
- fragment_types_exist.rb: ``No such type X, so it can't be a fragment condition``
  (undefinedType); variables_are_input_types.rb: ``X isn't a defined input type (on $v)``
  (variableRequiresValidType)

GitLab stops validating after 5 errors (``validate_max_errors 5`` in app/graphql/gitlab_schema.rb).
Messages graphql-core produces for which no rule is mapped keep graphql-core's words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from graphql import GraphQLError

MAX_VALIDATION_ERRORS = 5


def _anonymous(op: str | None) -> str:
    return op or "anonymous query"


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str], GraphQLError], tuple[str, dict[str, Any]]]]

RULES: list[_Rule] = [
    (
        re.compile(r"Cannot query field '(\w+)' on type '(\w+)'\."),
        lambda m, _e: (
            f"Field '{m[1]}' doesn't exist on type '{m[2]}'",
            {"code": "undefinedField", "typeName": m[2], "fieldName": m[1]},
        ),
    ),
    (
        re.compile(r"Unknown argument '(\w+)' on field '(\w+)\.(\w+)'\."),
        lambda m, _e: (
            f"Field '{m[3]}' doesn't accept argument '{m[1]}'",
            {
                "code": "argumentNotAccepted",
                "name": m[3],
                "typeName": "Field",
                "argumentName": m[1],
            },
        ),
    ),
    (
        re.compile(r"Field '(\w+)' argument '(\w+)' of type '[^']+' is required, but it was not"),
        lambda m, _e: (
            f"Field '{m[1]}' is missing required arguments: {m[2]}",
            {
                "code": "missingRequiredArguments",
                "className": "Field",
                "name": m[1],
                "arguments": m[2],
            },
        ),
    ),
    (
        # graphql-core >= 3.2 words it "Argument 'Query.project(fullPath:)' of type 'ID!' is ..."
        re.compile(r"Argument '\w+\.(\w+)\((\w+):\)' of type '[^']+' is required"),
        lambda m, _e: (
            f"Field '{m[1]}' is missing required arguments: {m[2]}",
            {
                "code": "missingRequiredArguments",
                "className": "Field",
                "name": m[1],
                "arguments": m[2],
            },
        ),
    ),
    (
        re.compile(r"Variable '\$(\w+)' is never used(?: in operation '(\w+)')?\."),
        lambda m, _e: (
            f"Variable ${m[1]} is declared by {_anonymous(m[2])} but not used",
            {"code": "variableNotUsed", "variableName": m[1]},
        ),
    ),
    (
        re.compile(r"Variable '\$(\w+)' is not defined(?: by operation '(\w+)')?\."),
        lambda m, _e: (
            f"Variable ${m[1]} is used by {_anonymous(m[2])} but not declared",
            {"code": "variableNotDefined", "variableName": m[1]},
        ),
    ),
    (
        re.compile(r"Field '(\w+)' of type '\[?(\w+)[!\]]*' must have a selection of subfields"),
        lambda m, _e: (
            (
                f"Field must have selections (field '{m[1]}' returns {m[2]} but has no selections. "
                f"Did you mean '{m[1]} {{ ... }}'?)"
            ),
            {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'", "typeName": m[2]},
        ),
    ),
    (
        re.compile(r"Field '(\w+)' must not have a selection since type '(\w+)!?' has no"),
        lambda m, e: (
            (
                f"Selections can't be made on scalars (field '{m[1]}' returns {m[2]} but has "
                f"selections [{', '.join(_selected(e))}])"
            ),
            {"code": "selectionMismatch", "nodeName": f"field '{m[1]}'", "typeName": m[2]},
        ),
    ),
    (
        re.compile(r"Unknown type '(\w+)'\."),
        lambda m, _e: (
            f"No such type {m[1]}, so it can't be a fragment condition",
            {"code": "undefinedType", "typeName": m[1]},
        ),
    ),
]


def _selected(error: GraphQLError) -> list[str]:
    names: list[str] = []
    for node in error.nodes or ():
        selection_set = getattr(node, "selection_set", None)
        for selection in getattr(selection_set, "selections", ()) or ():
            name = getattr(getattr(selection, "name", None), "value", None)
            if name:
                names.append(name)
    return names


def ruby_error(error: GraphQLError) -> dict[str, Any]:
    """One error as GitLab serialises it: message, locations, and extensions when known."""
    formatted: dict[str, Any] = dict(error.formatted)
    for pattern, render in RULES:
        match = pattern.match(error.message)
        if match:
            message, extensions = render(match, error)
            formatted["message"] = message
            formatted["extensions"] = extensions
            break
    return formatted


def validation_errors(errors: Sequence[GraphQLError]) -> list[dict[str, Any]]:
    return [ruby_error(error) for error in errors[:MAX_VALIDATION_ERRORS]]


# graphql-ruby's lexer token names (lib/graphql/language/lexer.rb) for graphql-core's tokens.
_TOKENS = {
    "{": "LCURLY",
    "}": "RCURLY",
    "(": "LPAREN",
    ")": "RPAREN",
    "[": "LBRACKET",
    "]": "RBRACKET",
    ":": "COLON",
    "=": "EQUALS",
    "!": "BANG",
    "$": "VAR_SIGN",
    "@": "DIR_SIGN",
    "|": "PIPE",
    "&": "AMP",
    "...": "ELLIPSIS",
}
_EXPECTED = {"Name": "NAME", "<EOF>": "EOF"}


def _token(text: str) -> tuple[str, str]:
    """graphql-core's token text (`'}'`, `<EOF>`, `Name "x"`, `Int "1"`) -> (name, value)."""
    if text == "<EOF>":
        return "(none)", ""
    quoted = re.fullmatch(r"'(.+)'", text)
    if quoted:
        return _TOKENS.get(quoted.group(1), "UNKNOWN_CHAR"), quoted.group(1)
    typed = re.fullmatch(r"(\w+) [\"'](.*)[\"']", text)
    if typed:
        kind = {"Name": "IDENTIFIER", "Int": "INT", "Float": "FLOAT", "String": "STRING"}
        return kind.get(typed.group(1), typed.group(1).upper()), typed.group(2)
    return "UNKNOWN_CHAR", text


def parse_error(error: GraphQLError) -> dict[str, Any]:
    """graphql-ruby >= 2.3's parser words a syntax error as ``Expected NAME, actual: RCURLY
    ("}") at [1, 10]`` (``(none) ("")`` at the end of the document); graphql-core's
    "Unexpected X" has no expected token there, and becomes ``Parse error on "X" (KIND) at
    [l, c]`` [approximate: not checked against graphql-ruby for every case]."""
    location = error.locations[0] if error.locations else None
    where = f" at [{location.line}, {location.column}]" if location else ""
    text = error.message.removeprefix("Syntax Error: ").rstrip(".")
    expected = re.fullmatch(r"Expected (.+?), found (.+)", text)
    unexpected = re.fullmatch(r"Unexpected (.+)", text)
    if expected:
        name, value = _token(expected.group(2))
        wanted = _EXPECTED.get(expected.group(1), expected.group(1).strip("'").upper())
        message = (
            f'Expected {_TOKENS.get(wanted.lower(), wanted)}, actual: {name} ("{value}"){where}'
        )
    elif unexpected:
        name, value = _token(unexpected.group(1))
        message = f'Parse error on "{value}" ({name}){where}'
    else:
        message = text + where
    return {
        "message": message,
        "locations": [{"line": location.line, "column": location.column}] if location else [],
    }
