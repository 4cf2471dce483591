import LibNFS
print("nfs-check: not yet implemented")
