"""GPU metrics: the sample schema, the offline (Parquet/CSV) and Prometheus sources behind one
interface, daily rollups and the aggregations pages read (water level, usage, warnings)."""
