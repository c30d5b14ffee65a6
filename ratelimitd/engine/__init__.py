"""(curated by its module owners)"""
