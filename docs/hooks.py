"""mkdocs hook: publish the benchmark figures of benchmarks/results/ with the site.

The figures stay where the benchmark scripts write them; the Benchmarks page links them as
``figures/<name>``, so a rerun of a benchmark updates the site without a copy in docs/.
"""

from pathlib import Path

from mkdocs.structure.files import File

FIGURES = ("distribute.png",)


def on_files(files, config):
    results = Path(config["config_file_path"]).parent / "benchmarks" / "results"
    for name in FIGURES:
        if (results / name).is_file():  # a missing figure: the strict build names the link
            files.append(File.generated(config, f"figures/{name}", abs_src_path=str(results / name)))
    return files
