"""Training and plain evaluation never need FAISS (only re-ranking and the index tools do): a GPU machine
without faiss-cpu can run the benchmarks' trainings (re-ranking against torchreid: test_rerank.py)."""

import subprocess
import sys


def test_the_training_path_imports_without_faiss():
    code = (
        "import sys; sys.modules['faiss'] = None\n"  # any `import faiss` now raises ImportError
        "import reid_dff.engine, reid_dff.evaluation, reid_dff.experiments, reid_dff.tasks\n"
        "print('imported')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"
