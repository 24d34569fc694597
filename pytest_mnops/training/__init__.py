"""Training mode: human steps judged by their effect on the cluster, and a room of trainees."""
