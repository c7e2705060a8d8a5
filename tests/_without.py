"""Run Python code in a fresh interpreter where some packages cannot be imported: how the
tests see fastgd without its optional extras, whatever is installed here."""
import subprocess
import sys

_BLOCKER = (
    "import sys\n"
    "class _Without:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in {blocked!r}:\n"
    "            raise ImportError(f'No module named {{name}} (blocked by the test)')\n"
    "sys.meta_path.insert(0, _Without())\n"
)


def run_without(packages, code, timeout=300):
    """``subprocess.run`` of ``code`` with the top-level ``packages`` made unimportable."""
    prelude = _BLOCKER.format(blocked=set(packages))
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                          text=True, timeout=timeout)
