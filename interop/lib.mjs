// Shared by verify.mjs and sign.mjs: one JSON request on stdin, one JSON answer on stdout.
// The Python tests (tests/test_interop_node.py) run these scripts as subprocesses.

export async function readRequest() {
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return JSON.parse(text);
}

export function answer(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}

// A refusal is an answer, not a crash: the tests assert on it. Only a broken request or a
// broken script exits non-zero.
export function refusal(library, error) {
  return { library, ok: false, error: error?.name ?? 'Error', code: error?.code ?? null,
           message: String(error?.message ?? error) };
}

export async function main(run) {
  try {
    answer(await run(await readRequest()));
  } catch (error) {
    process.stderr.write(`${error?.stack ?? error}\n`);
    process.exit(2);
  }
}
