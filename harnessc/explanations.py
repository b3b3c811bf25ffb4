"""`harnessc explain CODE`: for each diagnostic code a small bad harness and how to fix it.

The message shown is not written here: `explain` compiles the example and prints what the checker really
says, so the explanation cannot drift from the implementation (tests/test_explanations.py checks that
every example produces its code and only its code, and that docs/diagnostics.md is generated from this
table: `python -m harnessc.explanations --markdown > docs/diagnostics.md`).

Most examples are one file. A few codes cannot come from the text of one file, and their entries say what
else the example needs: other files next to it (`files`, for imports), `--set` overrides (`overrides`), a
file saved in another encoding (`encoding`) or no file at all (`exists=False`). The example is always
compiled from a temporary directory, whose path is left out of the output.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harnessc.codes import CODES


@dataclass(frozen=True, slots=True)
class Explanation:
    example: str  # a complete harness file that triggers the code
    fix: str  # one or two sentences
    purpose: str = "run"  # checked as for `harnessc check --for PURPOSE` (run: no training-view warnings)
    files: tuple[tuple[str, str], ...] = ()  # other files beside the example: (relative path, text)
    pipes: tuple[str, ...] = ()  # named pipes (FIFOs) beside the example
    large_files: tuple[str, ...] = ()  # files beside the example, of comments, just over the size limit
    overrides: tuple[tuple[str, str], ...] = ()  # `--set NAME=VALUE` options
    encoding: str = "utf-8"  # how the example file is saved
    exists: bool = True  # False: the example file is missing (nothing is written)

    def command(self, name: str) -> str:
        """The command line that checks the example (shown when it is not a plain `harnessc check`)."""
        sets = "".join(f" --set {key}={value}" for key, value in self.overrides)
        return f"harnessc check --for {self.purpose}{sets} {name}"


def _harness(body: str, name: str = "plan_solve") -> str:
    """A complete file: header, `body` (dedented, without its first and last newline)."""
    lines = body.strip("\n").splitlines()
    indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    return f"harness {name}\n\n" + "\n".join(line[indent:] for line in lines) + "\n"


_MATH_EXPERT = 'snippet MATH_EXPERT = "You are an expert mathematician. Put the final answer in \\boxed{}."\n'
_SOLVE = """
            llm solve {
              user "Problem: {question}"
              max_tokens 1024
            }
"""

_IMPORTING = """
            import "{path}"

            input question: text

            llm solve {{
              system MATH_EXPERT
              user "Problem: {{question}}"
              max_tokens 1024
            }}

            output = extract_boxed(solve)
"""

EXPLANATIONS: dict[str, Explanation] = {
    # ---- reading and syntax ----------------------------------------------------------------------------
    "unreadable-file": Explanation(
        example="",
        exists=False,
        fix="Check the path (it is relative to the current directory) and that the file is readable.",
    ),
    "invalid-encoding": Explanation(
        example=_harness(
            """
            # Problème: this file was saved as Latin-1.
            input question: text
        """
            + _SOLVE
            + """
            output = extract_boxed(solve)
        """
        ),
        encoding="latin-1",
        fix="Save the file as UTF-8 (every editor has the option); harness files are always read as UTF-8.",
    ),
    "syntax-error": Explanation(
        example=_harness(
            """
            input question text
        """
            + _SOLVE
            + """
            output = extract_boxed(solve)
        """
        ),
        fix="Write what the message expects at the caret: here the `:` between an input's name and its type "
        "(`input question: text`).",
    ),
    "number-out-of-range": Explanation(
        example=_harness("""
            input question: text

            llm solve {
              user "Problem: {question}"
              max_tokens 1024
              seed 12345678901234567890
            }

            output = extract_boxed(solve)
        """),
        fix="Write a number in range: integers are 64-bit (at most 9,223,372,036,854,775,807 in size), "
        "decimals finite.",
    ),
    "unexpected-character": Explanation(
        example=_harness("""
            input question: text

            llm solve {
              user "Problem: {question}"
              temperature 0.6;
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """),
        fix="Remove the character: options and declarations end at the end of their line, strings use double "
        "quotes and conditions are written with `and`, `or`, `not`.",
    ),
    "unterminated-string": Explanation(
        example=_harness("""
            input question: text

            llm solve {
              user "Problem: {question}
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """),
        fix='Close the string on the same line, or use a """...""" string for text over several lines.',
    ),
    "unclosed-delimiter": Explanation(
        example=_harness("""
            input question: text

            llm plan {
              user "Plan how to solve: {question}"
              max_tokens 1024
            }

            let plan_text = strip_think(plan

            llm solve {
              user "Problem: {question}\\nPlan: {plan_text}"
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """),
        fix="Add the missing closer where the construct ends: here `)` after `strip_think(plan`.",
    ),
    "unexpected-eof": Explanation(
        example=_harness(
            """
            input question: text
        """
            + _SOLVE
            + """
            output =
        """
        ),
        fix="Finish the last declaration: `output = extract_boxed(solve)`.",
    ),
    "missing-header": Explanation(
        example=_harness(
            """
            input question: text
        """
            + _SOLVE
            + """
            output = extract_boxed(solve)
        """
        ).split("\n", 2)[2],
        fix='Begin the file with `harness NAME` and, optionally, a description: `harness plan_solve "Plan, '
        'then solve"`.',
    ),
    "import-not-found": Explanation(
        example=_harness("""
            import "common/math_prompt.harness"

            input question: text

            llm solve {
              system MATH_EXPERT
              user "Problem: {question}"
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """),
        files=(("common/math_prompts.harness", _MATH_EXPERT),),
        fix="Fix the path: imports are relative to the importing file (here `common/math_prompts.harness`).",
    ),
    "import-content": Explanation(
        example=_harness(
            """
            import "common/math_prompts.harness"

            input question: text
        """
            + _SOLVE.replace("user", "system MATH_EXPERT\n              user")
            + """
            output = extract_boxed(solve)
        """
        ),
        files=(("common/math_prompts.harness", _MATH_EXPERT + "input question: text\n"),),
        fix="Move the declaration into the harness that imports the file; shared files hold snippets only.",
    ),
    "path-outside-root": Explanation(
        example=_harness(_IMPORTING.format(path="../shared/math_prompts.harness")),
        fix="Keep shared files inside the harness's folder tree (e.g. in `common/`), or allow their folder "
        "with `--allow-root DIR` (`allow_roots` in a training config).",
    ),
    "not-a-regular-file": Explanation(
        example=_harness(_IMPORTING.format(path="common/math_prompts.harness")),
        pipes=("common/math_prompts.harness",),
        fix="Name a regular file: save the snippets in `common/math_prompts.harness` instead of piping them in.",
    ),
    "file-too-large": Explanation(
        example=_harness(_IMPORTING.format(path="common/math_prompts.harness")),
        large_files=("common/math_prompts.harness",),
        fix="Split the file into several smaller ones, each imported where it is needed.",
    ),
    "not-harness-source": Explanation(
        example=_harness(_IMPORTING.format(path="common/math_prompts.txt")),
        files=(("common/math_prompts.txt", _MATH_EXPERT),),
        fix="Import only harness files: UTF-8 text named `*.harness` (rename `math_prompts.txt` to "
        "`math_prompts.harness`).",
    ),
    # ---- names and types ---------------------------------------------------------------------------------
    "duplicate-definition": Explanation(
        example=_harness(
            """
            input question: text

            llm solve {
              user "Plan how to solve: {question}"
              max_tokens 1024
            }
        """
            + _SOLVE
            + """
            output = extract_boxed(solve)
        """
        ),
        fix="Give each input, parameter, snippet, bank and stage its own name (here: rename the first stage "
        "`plan`); set each option and declare each view once.",
    ),
    "unknown-name": Explanation(
        example=_harness("""
            input question: text

            llm solve {
              user "Problem: {questoin}"
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """),
        fix="Use a declared input, parameter, snippet, bank or stage; the hint names the closest one.",
    ),
    "unknown-field": Explanation(
        example=_harness(
            '''
            input text: text
            input label: text oracle

            bank cases {
              text: text = text
              label: text = label
              search text
            }

            llm draft {
              user """
                {for case in retrieve(cases, text)}- {case.txt}
                {end}
                Message: {text}
              """
              max_tokens 256
            }

            output = draft
        ''',
            "draft_verify",
        ),
        fix="Use one of the record's fields, as declared in the bank (here `case.text`).",
    ),
    "unknown-builtin": Explanation(
        example=_harness(
            """
            input question: text
        """
            + _SOLVE
            + """
            output = extract_boxd(solve)
        """
        ),
        fix="Call a registered built-in (`harnessc builtins` lists them), or register your own with "
        "`--builtins MODULE`.",
    ),
    "unknown-type": Explanation(
        example=_harness(
            """
            input question: string
        """
            + _SOLVE
            + """
            output = extract_boxed(solve)
        """
        ),
        fix="Use `text`, `int`, `float`, `bool`, `list[T]` or `record{name: T, ...}`.",
    ),
    "unknown-option": Explanation(
        example=_harness("""
            input question: text

            llm solve {
              user "Problem: {question}"
              temprature 0.6
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """),
        fix="Use a message role (`system`, `user`, `assistant`) or one of the options in harnessc/options.py;"
        " the hint names the closest one.",
    ),
    "unknown-flag": Explanation(
        example=_harness(
            """
            input question: text
            input answer: text orcale
        """
            + _SOLVE
            + """
            output = extract_boxed(solve)
            grade = math_equal(output, answer)
        """
        ),
        fix="An input's flags are `optional` (it may be absent) and `oracle` (training and grading only).",
    ),
    "unknown-argument": Explanation(
        example=_harness(
            '''
            input text: text
            input label: text oracle

            bank cases {
              text: text = text
              label: text = label
              search text
            }

            let rules = retrieve(cases, text, top_k=3)

            llm draft {
              user """
                {for case in rules}- {case.text} -> {case.label}
                {end}
                Message: {text}
              """
              max_tokens 256
            }

            output = draft
        ''',
            "draft_verify",
        ),
        fix="Use the parameter names of the built-in's signature, shown in the hint (here `k=3`).",
    ),
    "duplicate-argument": Explanation(
        example=_harness(
            '''
            input text: text
            input label: text oracle

            bank cases {
              text: text = text
              label: text = label
              search text
            }

            let rules = retrieve(cases, text, 3, k=5)

            llm draft {
              user """
                {for case in rules}- {case.text} -> {case.label}
                {end}
                Message: {text}
              """
              max_tokens 256
            }

            output = draft
        ''',
            "draft_verify",
        ),
        fix="Give each argument once, either by position or by name.",
    ),
    "argument-count": Explanation(
        example=_harness(
            """
            input question: text
            input answer: text oracle
        """
            + _SOLVE
            + """
            output = extract_boxed(solve)
            grade = math_equal(output)
        """
        ),
        fix="Pass the arguments the signature (in the hint) asks for: `math_equal(output, answer)`.",
    ),
    "argument-type": Explanation(
        example=_harness(
            """
            input text: text

            llm draft {
              user "Message: {text}\\nIs it about billing or shipping?"
              max_tokens 256
            }

            output = parse_label(draft, "billing")
        """,
            "draft_verify",
        ),
        fix='Pass a value of the parameter\'s type: here a list, `["billing", "shipping"]` or a `list[text]` '
        "parameter.",
    ),
    "type-mismatch": Explanation(
        example=_harness("""
            input question: text

            llm solve {
              user "Problem: {question}"
              max_tokens "1024"
            }

            output = extract_boxed(solve)
        """),
        fix="Write a value of the expected type (here the number `1024`, without quotes); test text and lists"
        " in conditions with `nonempty(...)`.",
    ),
    "not-constant": Explanation(
        example=_harness("""
            input question: text

            let budget = size(question)

            llm solve {
              user "Problem: {question}"
              max_tokens budget
            }

            output = extract_boxed(solve)
        """),
        fix="Options and parameter defaults must be known before the harness runs: use a literal or a `param`"
        " (which `--set` can change).",
    ),
    # ---- templates -------------------------------------------------------------------------------------
    "unbalanced-brace": Explanation(
        example=_harness("""
            input question: text

            llm solve {
              user "Problem: {question}}"
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """),
        fix="Close each placeholder `{name}` once; write `{{` and `}}` for literal braces (`{}` alone, as in "
        "`\\boxed{}`, is kept as written).",
    ),
    "template-block": Explanation(
        example=_harness('''
            input question: text
            input answer: text oracle

            llm solve {
              user """
                Problem: {question}
                {if answer}
                Reference answer (for verification only): {answer}
              """
              max_tokens 1024
            }

            output = extract_boxed(solve)
        '''),
        fix="Close every `{if ...}` and `{for ... in ...}` with `{end}`; an `{if}` may have one `{else}`.",
    ),
    "optional-placeholder": Explanation(
        example=_harness("""
            input question: text
            input hint: text optional

            llm solve {
              user "Problem: {question}\\nHint: {hint}"
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """),
        fix="Print it inside `{if hint}...{end}`, which is left out when the value is absent.",
    ),
    "placeholder-type": Explanation(
        example=_harness(
            """
            input question: text

            llm sample {
              user "Problem: {question}"
              n 4
              max_tokens 1024
            }

            let answers = [extract_boxed(solution) for solution in sample]

            llm consensus {
              user "Problem: {question}\\nCandidate answers: {answers}"
              max_tokens 1024
            }

            output = extract_boxed(consensus)
        """,
            "self_consistency",
        ),
        fix='Print lists with `{for item in answers}...{item}...{end}` or `{join(answers, ", ")}`, and '
        "records one field at a time (`{case.text}`).",
    ),
    # ---- stages and graph ------------------------------------------------------------------------------
    "cycle": Explanation(
        example=_harness("""
            input question: text

            llm plan {
              user "Problem: {question}\\nPrevious attempt: {solve}\\nPlan a better approach."
              max_tokens 1024
            }

            llm solve {
              user "Problem: {question}\\nPlan: {plan}"
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """),
        fix="Break the cycle: a stage reads only stages before it. To improve an answer repeatedly, use "
        "`loop current from solve max 3 { ... next revise }`.",
    ),
    "loop-order": Explanation(
        example=_harness(
            """
            input question: text
        """
            + _SOLVE
            + """
            loop current from solve max 3 {
              llm critique {
                user "Problem: {question}\\nSolution: {revise}\\nPoint out every error, or say APPROVED."
                max_tokens 1024
              }
              until contains(critique, "APPROVED")
              llm revise {
                user "Problem: {question}\\nSolution: {current}\\nCritique: {critique}\\nCorrect it."
                max_tokens 1024
              }
              next revise
            }

            output = extract_boxed(current)
        """,
            "critique_revise",
        ),
        fix="Read the loop value (`{current}`: the previous iteration's result) or move the step that is read"
        " before the step that reads it.",
    ),
    "unbounded-loop": Explanation(
        example=_harness(
            """
            input question: text
        """
            + _SOLVE
            + """
            loop current from solve {
              llm revise {
                user "Problem: {question}\\nSolution: {current}\\nCorrect it, or repeat it if it is right."
                max_tokens 1024
              }
              next revise
            }

            output = extract_boxed(current)
        """,
            "critique_revise",
        ),
        fix="Bound the loop: `loop current from solve max 3 { ... }` (`max` may name an int `param`).",
    ),
    "loop-without-next": Explanation(
        example=_harness(
            """
            input question: text
        """
            + _SOLVE
            + """
            loop current from solve max 3 {
              llm revise {
                user "Problem: {question}\\nSolution: {current}\\nCorrect it, or repeat it if it is right."
                max_tokens 1024
              }
            }

            output = extract_boxed(current)
        """,
            "critique_revise",
        ),
        fix="Say which value the next iteration works on with `next revise` as the loop's last line.",
    ),
    "empty-prompt": Explanation(
        example=_harness("""
            input question: text

            llm solve {
              temperature 0.6
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """),
        fix='Give the prompt at least one message: `user "Problem: {question}"`.',
    ),
    "message-order": Explanation(
        example=_harness("""
            input question: text

            llm solve {
              user "Problem: {question}"
              system "You are an expert mathematician."
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """),
        fix="Put the system message first and end the prompt with a user message.",
    ),
    "invalid-option-value": Explanation(
        example=_harness("""
            input question: text

            llm solve {
              user "Problem: {question}"
              top_p 1.5
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """),
        fix="Use a value in the option's range: temperature >= 0, top_p in (0, 1], min_p in [0, 1], top_k >= "
        "0, max_tokens and n >= 1.",
    ),
    "limit-exceeded": Explanation(
        example=_harness(
            """
            input question: text

            llm sample {
              user "Problem: {question}"
              max_tokens 1024
              n 100000
            }

            output = majority(sample)
        """,
            "self_consistency",
        ),
        fix="Stay within the limits listed in docs/language.md (here `n` up to 1,024): a run over them could "
        "not finish.",
    ),
    "conflicting-constraints": Explanation(
        example=_harness(
            """
            input text: text

            param labels: list[text] = ["billing", "shipping", "returns"]

            llm draft {
              user "Message: {text}\\nAnswer with one label: {join(labels, \\", \\")}"
              choice labels
              regex "billing|shipping|returns"
              max_tokens 16
            }

            output = draft
        """,
            "draft_verify",
        ),
        fix="Keep one of `choice`, `regex` and `json` per stage (here `choice labels` alone says it all).",
    ),
    "invalid-regex": Explanation(
        example=_harness(
            """
            input text: text

            llm draft {
              user "Message: {text}\\nEnd with `Label: <label>`."
              regex "Label: (billing|shipping|returns"
              max_tokens 256
            }

            output = draft
        """,
            "draft_verify",
        ),
        fix="Fix the pattern (Python `re` syntax); here close the group: `Label: (billing|shipping|returns)`.",
    ),
    "invalid-json-schema": Explanation(
        example=_harness(
            """
            input text: text

            llm draft {
              user "Message: {text}\\nAnswer as JSON with a `label` field."
              json "{'type': 'object'}"
              max_tokens 256
            }

            output = draft
        """,
            "draft_verify",
        ),
        fix='Write the schema as a JSON object with double quotes, in a """...""" string: '
        '`json """{"type": "object"}"""` (option values are taken verbatim, not as templates).',
    ),
    "teacher-not-llm": Explanation(
        example=_harness("""
            input question: text

            llm plan {
              user "Plan how to solve: {question}"
              max_tokens 1024
            }

            let plan_text = strip_think(plan)

            llm solve {
              user "Problem: {question}\\nPlan: {plan_text}"
              max_tokens 1024
            }

            student {
              user "{question}"
              max_tokens 1024
            }
            teacher = plan_text else student

            output = extract_boxed(solve)
        """),
        fix="Name LLM stages in the teacher chain (here `teacher = solve else student`), or write an explicit"
        " `teacher { ... }` prompt.",
    ),
    "bank-without-search": Explanation(
        example=_harness(
            '''
            input text: text
            input label: text oracle

            bank cases {
              text: text = text
              label: text = label
            }

            llm draft {
              user """
                {for case in retrieve(cases, text)}- {case.text} -> {case.label}
                {end}
                Message: {text}
              """
              max_tokens 256
            }

            output = draft
        ''',
            "draft_verify",
        ),
        fix="Add `search text` to the bank, naming the text field that `retrieve` compares with the query.",
    ),
    "bank-without-label": Explanation(
        example=_harness(
            '''
            input text: text
            input label: text oracle

            bank cases {
              text: text = text
              label: text = label
              search text
            }

            llm draft {
              user "Message: {text}\\nEnd with `Label: <label>`."
              max_tokens 256
            }

            let rules = retrieve(cases, text, k=3, label_not_in=[draft])

            llm verify {
              user """
                Message: {text}
                You answered: {draft}. Cases with other labels:
                {for case in rules}- {case.text} -> {case.label}
                {end}
              """
              max_tokens 256
            }

            output = verify
        ''',
            "draft_verify",
        ),
        fix="Add `label label` to the bank, naming the field that `label_in` and `label_not_in` filter on.",
    ),
    # ---- information flow and purpose --------------------------------------------------------------------
    "student-reads-stage": Explanation(
        example=_harness("""
            input question: text

            llm plan {
              user "Plan how to solve: {question}"
              max_tokens 1024
            }

            llm solve {
              user "Problem: {question}\\nPlan: {plan}"
              max_tokens 1024
            }

            student {
              user "Problem: {question}\\nPlan: {plan}"
              max_tokens 1024
            }
            teacher = solve else student

            output = extract_boxed(solve)
        """),
        fix="The student sees only what the trained model will have alone: inputs and parameters. Show stage "
        "results in the teacher.",
    ),
    "student-reads-oracle": Explanation(
        example=_harness(
            """
            input question: text
            input answer: text oracle

            student {
              user "{question}\\nThe answer is {answer}."
              max_tokens 1024
            }

            teacher {
              user "{question}\\nThe reference answer is {answer}; reason your way to it."
              max_tokens 1024
            }

            output = extract_boxed(student)
            grade = math_equal(output, answer)
        """,
            "opsd",
        ),
        fix="Remove the oracle input from the student view; it belongs in the teacher.",
    ),
    "oracle-at-inference": Explanation(
        example=_harness("""
            input question: text
            input answer: text oracle

            llm solve {
              user "Problem: {question}\\nReference answer (for verification only): {answer}"
              max_tokens 1024
            }

            output = extract_boxed(solve)
            grade = math_equal(output, answer)
        """),
        fix="Show the oracle input only when it is present: `{if answer}Reference answer: {answer}{end}`.",
    ),
    "missing-student": Explanation(
        example=_harness(
            """
            input question: text
        """
            + _SOLVE
            + """
            teacher = solve

            output = extract_boxed(solve)
        """
        ),
        purpose="train",
        fix='Declare the prompt the trained model will see alone: `student { user "{question}" }`.',
    ),
    "missing-teacher": Explanation(
        example=_harness(
            """
            input question: text
        """
            + _SOLVE
            + """
            student {
              user "{question}"
              max_tokens 1024
            }

            output = extract_boxed(solve)
        """
        ),
        purpose="train",
        fix="Say whose context the teacher sees: `teacher = solve else student`, or a `teacher { ... }` prompt.",
    ),
    "missing-output": Explanation(
        example=_harness(
            """
            input question: text
        """
            + _SOLVE
        ),
        fix="Declare what the harness answers: `output = extract_boxed(solve)`.",
    ),
    "invalid-override": Explanation(
        example=_harness(
            """
            input question: text

            param samples: int = 8

            llm sample {
              user "Problem: {question}"
              n samples
              max_tokens 1024
            }

            output = majority([extract_boxed(solution) for solution in sample])
        """,
            "self_consistency",
        ),
        overrides=(("sample", "4"),),
        fix="Name a declared `param` (the hint names the closest one) and give a value of its type: numbers "
        'and lists as JSON (`--set samples=4`, `--set labels=["a","b"]`), text as is.',
    ),
    # ---- warnings ----------------------------------------------------------------------------------------
    "unused-stage": Explanation(
        example=_harness(
            """
            input question: text

            llm plan {
              user "Plan how to solve: {question}"
              max_tokens 1024
            }
        """
            + _SOLVE
            + """
            output = extract_boxed(solve)
        """
        ),
        fix="Use the stage (here show the plan to `solve`: `Plan: {plan}`) or remove it; unused stages still "
        "cost a model call.",
    ),
    "bank-file-not-found": Explanation(
        example=_harness(
            '''
            input text: text
            input label: text oracle

            bank cases {
              text: text = text
              label: text = label
              search text
              file "data/cases.jsonl"
            }

            llm draft {
              user """
                {for case in retrieve(cases, text)}- {case.text} -> {case.label}
                {end}
                Message: {text}
              """
              max_tokens 256
            }

            output = draft
        ''',
            "draft_verify",
        ),
        fix="A bank's `file` is relative to the harness file, wherever the command runs: create "
        "`data/cases.jsonl` next to the harness (or correct the path). A file written only later, or data "
        "given at run time with `harnessc run --bank cases=PATH`, is fine: this is a warning, and the run "
        "reports a file still missing then.",
    ),
    "teacher-equals-student": Explanation(
        example=_harness(
            """
            input question: text
            input answer: text oracle

            student {
              user "{question}\\nPut the final answer in \\boxed{}."
              max_tokens 1024
            }

            teacher {
              user "{question}\\nPut the final answer in \\boxed{}."
              max_tokens 1024
            }

            output = extract_boxed(student)
            grade = math_equal(output, answer)
        """,
            "opsd",
        ),
        fix="Give the teacher more than the student sees (the reference answer inside `{if answer}...{end}`, "
        "a plan, retrieved cases), or name a harness stage: `teacher = solve else student`.",
    ),
    "thinking-mismatch": Explanation(
        example=_harness(
            """
            input question: text
            input answer: text oracle

            llm plan {
              user "Plan how to solve: {question}"
              max_tokens 512
            }

            student {
              user "{question}"
              thinking off
              max_tokens 1024
            }

            llm solve {
              user "{question}\\nPlan: {plan}"
              max_tokens 1024
            }
            teacher = solve else student

            output = extract_boxed(student)
            grade = math_equal(output, answer)
        """,
            "plan_solve",
        ),
        purpose="train",
        fix="Give the teacher's stages the student's setting (`thinking off` in `solve` too), so that the "
        "teacher context is written in the mode the student is trained in. The trainer makes the teacher "
        "continue from the student's assistant-turn opening either way.",
    ),
}


def example_name(code: str) -> str:
    return f"example-{code}.harness"


def example_diagnostics(code: str) -> str:
    """The rendered diagnostics of `code`'s example (compiled now, as the checker reports them)."""
    return run_example(code)[1]


def run_example(code: str) -> tuple[list, str]:
    """Compile `code`'s example as `harnessc check` would; returns (diagnostics, rendered text). The
    temporary directory it is written to is left out of file names."""
    from harnessc.compiler import compile_file
    from harnessc.diagnostics import Diagnostic, Label, render_all
    from harnessc.source import SourceFile, Span

    explanation = EXPLANATIONS[code]
    with tempfile.TemporaryDirectory(prefix="harnessc-explain-") as directory:
        root = Path(directory)
        for relative, text in explanation.files:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text, encoding="utf-8")
        for relative in explanation.pipes:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(root / relative)
        for relative in explanation.large_files:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(_large_text(), encoding="utf-8")
        path = root / example_name(code)
        if explanation.exists:
            path.write_bytes(explanation.example.encode(explanation.encoding))
        overrides = dict(explanation.overrides) or None
        compilation = compile_file(path, purpose=explanation.purpose, overrides=overrides)
        prefix = str(root) + "/"

        def local(text: str) -> str:
            return text.replace(prefix, "")

        def relocate(span: Span) -> Span:
            return Span(local(span.file), span.start, span.end, span.line, span.column, span.end_line, span.end_column)

        diagnostics = [
            Diagnostic(
                code=item.code,
                message=local(item.message),
                span=relocate(item.span),
                label=item.label,
                hints=item.hints,
                severity=item.severity,
                labels=tuple(Label(relocate(label.span), label.message) for label in item.labels),
            )
            for item in compilation.diagnostics
        ]
        sources = {local(name): SourceFile(local(name), source.text) for name, source in compilation.sources.items()}
    return diagnostics, render_all(diagnostics, sources)


def _large_text() -> str:
    """Comment lines, one line more than MAX_SOURCE_BYTES holds."""
    from harnessc.reading import MAX_SOURCE_BYTES

    line = "# " + "generated " * 7 + "\n"
    return line * (MAX_SOURCE_BYTES // len(line) + 1)


def _setup_lines(code: str) -> list[str]:
    """What the example needs besides its text, in words."""
    explanation = EXPLANATIONS[code]
    name = example_name(code)
    lines = [f"Beside it, {relative} is a named pipe (a FIFO)." for relative in explanation.pipes]
    lines += [
        f"Beside it, {relative} holds {len(_large_text().encode()):,} bytes of comments."
        for relative in explanation.large_files
    ]
    if not explanation.exists:
        lines.append(f"There is no file {name}.")
    if explanation.encoding != "utf-8":
        lines.append(f"{name} is saved as {explanation.encoding}, not UTF-8.")
    if explanation.overrides or explanation.purpose != "run" or not explanation.exists:
        lines.append(f"Checked with: {explanation.command(name)}")
    return lines


def explain(code: str) -> str:
    entry = CODES[code]
    lines = [f"{code} ({entry.severity.value}): {entry.summary}", ""]
    explanation = EXPLANATIONS.get(code)
    if explanation is None:
        return "\n".join(lines + ["(no example yet)"])
    if explanation.exists:
        lines += [f"Example ({example_name(code)}):", "", *_indent(explanation.example), ""]
    for relative, text in explanation.files:
        lines += [f"Beside it, {relative}:", "", *_indent(text), ""]
    setup = _setup_lines(code)
    lines += [*setup, ""] if setup else []
    lines += ["What harnessc says:", "", *_indent(example_diagnostics(code)), ""]
    lines += ["Fix:", "", "    " + explanation.fix]
    return "\n".join(lines)


def _indent(text: str) -> list[str]:
    return [("    " + line).rstrip() for line in text.rstrip().splitlines()]


# ---- docs/diagnostics.md ----------------------------------------------------------------------------------

_INTRO = """\
# harnessc diagnostics

Every problem `harnessc check` finds is a diagnostic with a stable code, a severity, a location and
usually a hint. Errors stop a harness from compiling; warnings do not. `harnessc explain CODE` prints one
entry of this page; `harnessc check --format json` gives the same diagnostics as data.

The output shown for each example is produced by compiling the example with the current compiler:
this page is generated by `python -m harnessc.explanations --markdown > docs/diagnostics.md`, and a test
fails when it is out of date. Examples are checked with `--for run` unless they say otherwise.
"""


def _anchor(code: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", code.lower())


def _fence(text: str, language: str = "") -> list[str]:
    return [f"```{language}", *text.rstrip("\n").splitlines(), "```"]


def markdown() -> str:
    """The full text of docs/diagnostics.md."""
    lines = [_INTRO, "| code | severity | summary |", "| --- | --- | --- |"]
    for code, entry in CODES.items():
        summary = entry.summary.replace("|", "\\|")
        lines.append(f"| [`{code}`](#{_anchor(code)}) | {entry.severity.value} | {summary} |")
    for code, entry in CODES.items():
        lines += ["", f"## {code}", "", f"*{entry.severity.value}*: {entry.summary}."]
        explanation = EXPLANATIONS.get(code)
        if explanation is None:
            lines += ["", "(no example yet)"]
            continue
        if explanation.exists:
            lines += ["", f"`{example_name(code)}`:", "", *_fence(explanation.example, "text")]
        for relative, text in explanation.files:
            lines += ["", f"Beside it, `{relative}`:", "", *_fence(text, "text")]
        for line in _setup_lines(code):
            prefix, _, command = line.partition("Checked with: ")
            lines += ["", f"Checked with: `{command}`" if command and not prefix else line]
        lines += ["", "What harnessc says:", "", *_fence(example_diagnostics(code), "text")]
        lines += ["", f"**Fix.** {explanation.fix}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harnessc.explanations", description="Print the explanation of diagnostic codes."
    )
    parser.add_argument("--markdown", action="store_true", help="print docs/diagnostics.md")
    parser.add_argument("codes", nargs="*", metavar="CODE", help="codes to explain (default: all)")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    unknown = [code for code in args.codes if code not in CODES]
    if unknown:
        parser.error(f"unknown diagnostic code(s): {', '.join(unknown)}")
    print("\n\n".join(explain(code) for code in args.codes or CODES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
