"""Areas of interest shipped with berthwatch (GeoJSON)."""
