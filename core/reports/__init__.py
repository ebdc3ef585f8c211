"""The monthly transparency report (算力资源晾晒报告): build, publish (immutable snapshot), export, analysis."""
