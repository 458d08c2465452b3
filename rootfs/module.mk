# The image and the air-gapped bundle (rootfs/README.md).
#   make image    $(IMAGE_DIR)/pg-appliance.tar: docker-save format, `docker load -i` it;
#                 deterministic (same programs + same host packages -> same image ID)
#   make bundle   $(BUILD)/pg-appliance-bundle.tar.gz: the image tarball, compose.yaml,
#                 configs/ and an install README, for a host with no network
# Both always re-run (cheap, ~10 s): the inputs include host packages make cannot see.
IMAGE_DIR ?= $(BUILD)/image
IMAGE_TAG ?= pg-appliance:latest

image: all
	rootfs/build.sh $(IMAGE_DIR) $(BUILD)/bin $(IMAGE_TAG)

bundle: image
	rootfs/bundle.sh $(IMAGE_DIR)/pg-appliance.tar $(BUILD)/pg-appliance-bundle.tar.gz

.PHONY: image bundle
